"""The actuator router: every endpoint module's routes under ``actuator.base_path``, plus the
discovery page (``GET {base_path}``) listing them as Spring Boot's HAL links."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from redis_streaming_starter.actuator import (
    beans,
    dlq,
    env,
    health_routes,
    info,
    jobs,
    listeners,
    loggers,
    metrics,
    services,
    threaddump,
    topics,
)
from redis_streaming_starter.actuator.context import ActuatorContext

if TYPE_CHECKING:
    from redis_streaming_starter.application import RedisStreamingApplication

__all__ = ["Link", "Links", "build_router"]

# Each returns only the endpoints its context exposes, at paths relative to the base path.
MODULES: tuple[Callable[[ActuatorContext], APIRouter], ...] = (
    health_routes.routes,
    info.routes,
    metrics.routes,
    listeners.routes,
    jobs.routes,
    topics.routes,
    dlq.routes,
    services.routes,
    env.routes,
    beans.routes,
    loggers.routes,
    threaddump.routes,
)

_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


class Link(BaseModel):
    href: str
    templated: bool = Field(description="True when href has {placeholders} to fill in.")


class Links(BaseModel):
    """``GET {base_path}``: a link per exposed endpoint path, as Spring's discovery page."""

    model_config = ConfigDict(populate_by_name=True)

    links: dict[str, Link] = Field(
        alias="_links",
        description="self, then <id> per endpoint and <id>-<param> per templated path.",
    )


def build_router(app: RedisStreamingApplication) -> APIRouter:
    """All exposed actuator endpoints of ``app`` under ``actuator.base_path``.

    An endpoint that is not exposed is not registered at all (404), and the discovery page is
    generated from the registered routes, so it lists exactly what is served.
    """
    ctx = ActuatorContext(app)
    router = ctx.router(prefix=ctx.base_path, tags=["actuator"])

    @router.get("", summary="Links to the exposed endpoints")
    async def discovery(request: Request) -> Links:
        links = {"self": Link(href=ctx.href(request), templated=False)}
        for path in _paths(router, ctx.base_path):
            key, href, templated = _link(path)
            links.setdefault(key, Link(href=ctx.href(request, href), templated=templated))
        return Links(links=links)

    for module_routes in MODULES:
        router.include_router(module_routes(ctx))
    _redirect_trailing_slashes(router, ctx.base_path)
    return router


def _redirect_trailing_slashes(router: APIRouter, base: str) -> None:
    """``{base}/topics/`` answers a 307 to ``/actuator/topics``: a *relative* ``Location``
    (Starlette's own redirect would build an absolute one from the Host header, which any
    client can set). One route per endpoint path plus ``/``, registered last; non-GET requests
    still need the token first."""

    async def trailing_slash(request: Request) -> Response:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        path = str(request.scope["path"])
        path = path[len(root) :] if root and path.startswith(root + "/") else path
        query = request.url.query
        return RedirectResponse(f"{root}{path.rstrip('/')}" + (f"?{query}" if query else ""), 307)

    for path in ["", *_paths(router, base)]:
        router.add_api_route(
            f"{path}/", trailing_slash, methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            include_in_schema=False,
        )  # fmt: skip


def _paths(router: APIRouter, base: str) -> list[str]:
    """Registered paths relative to ``base``, in registration order, without repeats."""
    paths: dict[str, None] = {}
    for route in _flat_routes(router):
        path = getattr(route, "path", None) or ""
        if path.startswith(base + "/") and getattr(route, "include_in_schema", True):
            paths[path.removeprefix(base)] = None
    return list(paths)


def _flat_routes(router: APIRouter) -> Iterable[Any]:
    """The router's routes with included routers expanded: FastAPI >= 0.165 keeps an included
    router as one nested route and offers ``iter_route_contexts`` to see through it; earlier
    versions copy the routes into ``routes`` themselves."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - FastAPI < 0.165
        return router.routes
    return iter_route_contexts(router.routes)


def _link(path: str) -> tuple[str, str, bool]:
    """``/loggers/{name}`` -> ("loggers-name", "/loggers/{name}", True); a path parameter
    that matches several segments shows as ``{*path}``, as Spring writes it."""
    key = "-".join(_PARAM.sub(r"\1", s) for s in path.split("/") if s)
    href = _PARAM.sub(lambda m: f"{{*{m[1]}}}" if m[2] == "path" else f"{{{m[1]}}}", path)
    return key, href, _PARAM.search(path) is not None
