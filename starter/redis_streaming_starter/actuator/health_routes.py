"""Actuator endpoints ``/health`` and ``/health/{path}``: components, probe groups, one component.

Status codes follow Spring Boot: 503 for DOWN and OUT_OF_SERVICE, 200 otherwise. Details (and
sub-components) follow ``actuator.show_details``. Two groups exist, as Spring's probes:

- ``liveness`` is UP unless the application failed to start; it never depends on Redis, so an
  orchestrator does not restart healthy processes during a Redis outage;
- ``readiness`` is OUT_OF_SERVICE until the listeners run and again from the start of a graceful
  stop, and DOWN while any component (Redis, the consumer, ...) is DOWN.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field

from redis_streaming_starter.actuator.context import ActuatorContext
from redis_streaming_starter.actuator.health import DOWN, OUT_OF_SERVICE, UP, Health, aggregate

__all__ = ["HealthNode", "SystemHealth", "routes"]


class HealthNode(BaseModel):
    """One node of the health tree."""

    status: str = Field(description="UP, DOWN, OUT_OF_SERVICE or UNKNOWN.")
    details: dict[str, Any] | None = Field(None, description="Shown per actuator.show_details.")
    components: dict[str, HealthNode] | None = Field(
        None, description="Sub-components, shown with the details."
    )


class SystemHealth(HealthNode):
    """``GET /health``: the aggregate, its components and the group names."""

    groups: list[str] = Field(description="Health groups, each served at /health/<group>.")


def http_status(status: str) -> int:
    """503 for DOWN and OUT_OF_SERVICE, else 200 (Spring's default mapping)."""
    return 503 if status in (DOWN, OUT_OF_SERVICE) else 200


_STATUS_503: dict[int | str, dict[str, Any]] = {
    503: {"description": "DOWN or OUT_OF_SERVICE (same body)."}
}


def routes(ctx: ActuatorContext) -> APIRouter:
    """``/health`` and ``/health/{path}`` when ``health`` is exposed."""
    router = ctx.router()
    if not ctx.is_exposed("health"):
        return router
    app = ctx.app

    def readiness_state() -> str:
        return UP if app.ready else OUT_OF_SERVICE

    async def liveness() -> str:
        return DOWN if app.failed else UP

    async def readiness() -> str:
        status, _ = await app.health.check_all()
        return aggregate([status, readiness_state()])

    groups: dict[str, Callable[[], Awaitable[str]]] = {
        "liveness": liveness,
        "readiness": readiness,
    }

    @router.get(
        "/health",
        summary="Aggregate health with components",
        response_model=SystemHealth,
        response_model_exclude_none=True,
        responses=_STATUS_503,
    )
    async def health(request: Request, response: Response) -> SystemHealth:
        status, components = await app.health.check_all()
        status = aggregate([status, readiness_state()])
        response.status_code = http_status(status)
        body: dict[str, Any] = {"status": status, "groups": sorted(groups)}
        if ctx.show_details(request):
            body["components"] = {n: h.body(True) for n, h in components.items()}
        return SystemHealth.model_validate(body)

    @router.get(
        "/health/{path:path}",
        summary="A health group (liveness, readiness) or component (redis, mq, a/b, ...)",
        response_model=HealthNode,
        response_model_exclude_none=True,
        responses={**_STATUS_503, 404: {"description": "No such component or group."}},
    )
    async def health_path(
        request: Request,
        response: Response,
        path: Annotated[
            str,
            Path(
                description="A group (liveness, readiness), a component (redis, mq, ...) or a "
                "nested component as component/child."
            ),
        ],
    ) -> HealthNode:
        name, _, rest = path.strip("/").partition("/")
        if name in groups and not rest:
            status = await groups[name]()
            response.status_code = http_status(status)
            return HealthNode(status=status)
        if name not in app.health.names:
            raise _not_found(path, app.health.names, sorted(groups))
        result = await app.health.check(name)
        if rest:
            result = _descend(result, rest.split("/"), path)
        response.status_code = http_status(result.status)
        return HealthNode.model_validate(result.body(ctx.show_details(request)))

    return router


def _descend(node: Health, parts: list[str], path: str) -> Health:
    for part in parts:
        if part not in node.components:
            children = ", ".join(sorted(node.components)) or "none"
            raise HTTPException(
                404, f"no health component {path!r}: {part!r} is not a sub-component ({children})"
            )
        node = node.components[part]
    return node


def _not_found(path: str, components: list[str], groups: list[str]) -> HTTPException:
    return HTTPException(
        404,
        f"no health component or group {path!r}; components: {', '.join(components)}; "
        f"groups: {', '.join(groups)}",
    )
