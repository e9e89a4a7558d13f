"""Actuator endpoints ``/services`` and ``/services/{name}``: the service registry, read through
``ServiceDiscovery`` (also when this application does not register itself)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from redis_streaming import RedisUnavailable
from redis_streaming.registry import ServiceDiscovery
from redis_streaming_starter.actuator.context import ActuatorContext
from redis_streaming_starter.container import resolve

__all__ = ["parse_filter", "routes"]

_FILTER = re.compile(r"^(?P<field>[^<>=!]+?)(?P<op>==|!=|>=|<=|>|<|=)(?P<value>.*)$")


class InstanceBody(BaseModel):
    service: str
    instance_id: str
    host: str
    port: int
    protocol: str
    weight: int
    metadata: dict[str, str]
    healthy: bool
    ephemeral: bool


class ServiceSummary(BaseModel):
    instances: int = Field(description="Live instances (healthy or not).")
    healthy: int = Field(description="Live instances marked healthy.")


class ServicesBody(BaseModel):
    """``GET /services``: every registered service with instance counts."""

    services: dict[str, ServiceSummary]


class ServiceBody(BaseModel):
    """``GET /services/{name}``: the instances that match."""

    name: str
    instances: list[InstanceBody]


def parse_filter(text: str) -> tuple[str, str]:
    """``weight:>=80`` / ``region==eu`` / ``region=eu`` / ``status:!=maintenance`` → the
    discovery filter ``("weight:>=", "80")``."""
    match = _FILTER.match(text)
    if match is None or not match["field"].rstrip(":"):
        raise HTTPException(
            400,
            f"filter {text!r} is not FIELD<op>VALUE; write e.g. filter=region==eu, "
            "filter=weight:>=80 or filter=status:!=maintenance (ops: == != > >= < <=)",
        )
    op = "==" if match["op"] == "=" else match["op"]
    return f"{match['field'].rstrip(':')}:{op}", match["value"]


def routes(ctx: ActuatorContext) -> APIRouter:
    """``/services`` endpoints when ``services`` is exposed."""
    router = ctx.router()
    if not ctx.is_exposed("services"):
        return router

    async def discovery() -> ServiceDiscovery:
        if ctx.app.redis is None:
            raise HTTPException(503, "the application is not running; retry once it has started")
        found: ServiceDiscovery = await resolve(ctx.app.container.discovery)
        return found

    def unavailable(exc: RedisUnavailable) -> HTTPException:
        return HTTPException(503, f"Redis is unavailable ({exc}); retry shortly")

    @router.get("/services", summary="Registered services with instance counts")
    async def services() -> ServicesBody:
        disc = await discovery()
        try:
            out: dict[str, ServiceSummary] = {}
            for name in await disc.services():
                found = await disc.instances(name, healthy_only=False)
                out[name] = ServiceSummary(
                    instances=len(found), healthy=sum(1 for i in found if i.healthy)
                )
        except RedisUnavailable as exc:
            raise unavailable(exc) from None
        return ServicesBody(services=out)

    @router.get(
        "/services/{name}",
        summary="Instances of one service, optionally filtered",
        responses={400: {"description": "Bad service name or filter"}},
    )
    async def service(
        name: str = Path(description="Service name."),
        healthy_only: bool = Query(False, description="Only instances marked healthy."),
        filter: list[str] = Query(  # noqa: B008 - FastAPI declaration style
            default_factory=list,
            description="FIELD<op>VALUE, repeatable (all must hold): region==eu, weight:>=80, "
            "status:!=maintenance. Fields: metadata keys, host, port, protocol, weight, healthy.",
        ),
    ) -> ServiceBody:
        filters: dict[str, Any] = dict(parse_filter(f) for f in filter)
        disc = await discovery()
        try:
            found = await disc.instances(name, healthy_only=healthy_only, filters=filters or None)
        except RedisUnavailable as exc:
            raise unavailable(exc) from None
        except ValueError as exc:  # invalid name or filter: the library says what to do
            raise HTTPException(400, str(exc)) from None
        return ServiceBody(name=name, instances=[InstanceBody(**i.to_dict()) for i in found])

    return router
