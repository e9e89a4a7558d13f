"""The actuator router: discovery links and health (liveness, readiness, components)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from redis_streaming_starter.actuator.health import DOWN, UP, aggregate

if TYPE_CHECKING:
    from redis_streaming_starter.application import RedisStreamingApplication

__all__ = ["build_router"]


def _status_code(status: str) -> int:
    return 503 if status in (DOWN, "OUT_OF_SERVICE") else 200


def build_router(app: RedisStreamingApplication) -> APIRouter:
    """All exposed actuator endpoints of ``app`` under ``actuator.base_path``."""
    settings = app.settings.actuator
    base = settings.base_path
    exposed = set(settings.expose)

    def is_exposed(endpoint: str) -> bool:
        return "*" in exposed or endpoint in exposed

    router = APIRouter(prefix=base, tags=["actuator"])
    show = settings.show_details != "never"

    @router.get("", summary="Links to the exposed endpoints")
    async def links(request: Request) -> dict[str, Any]:
        root = str(request.base_url).rstrip("/") + base
        out: dict[str, Any] = {"self": {"href": root, "templated": False}}
        if is_exposed("health"):
            out["health"] = {"href": f"{root}/health", "templated": False}
            out["health-path"] = {"href": f"{root}/health/{{*path}}", "templated": True}
        return {"_links": out}

    if is_exposed("health"):

        @router.get("/health", summary="Aggregate health with components")
        async def health() -> JSONResponse:
            status, components = await app.health.check_all()
            ready = app.ready
            status = aggregate([status, UP if ready else "OUT_OF_SERVICE"])
            body: dict[str, Any] = {"status": status}
            if show:
                body["components"] = {n: h.body(True) for n, h in components.items()}
            return JSONResponse(body, status_code=_status_code(status))

        @router.get("/health/liveness", summary="Liveness probe")
        async def liveness() -> JSONResponse:
            status = DOWN if app.failed else UP
            return JSONResponse({"status": status}, status_code=_status_code(status))

        @router.get("/health/readiness", summary="Readiness probe")
        async def readiness() -> JSONResponse:
            status, _ = await app.health.check_all()
            status = aggregate([status, UP if app.ready else "OUT_OF_SERVICE"])
            return JSONResponse({"status": status}, status_code=_status_code(status))

        @router.get("/health/{component}", summary="One health component")
        async def component(component: str) -> JSONResponse:
            if component not in app.health.names:
                return JSONResponse(
                    {"error": f"no health component {component!r}",
                     "components": app.health.names},
                    status_code=404,
                )  # fmt: skip
            result = await app.health.check(component)
            return JSONResponse(result.body(show), status_code=_status_code(result.status))

    return router
