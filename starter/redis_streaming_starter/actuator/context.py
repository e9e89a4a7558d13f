"""What every actuator endpoint module shares: exposure, the bearer token, visibility rules,
and its router (whose routes check the token, see :mod:`.security`)."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request

from redis_streaming_starter.actuator.security import reads_need_token, route_class

if TYPE_CHECKING:
    from redis_streaming_starter.application import RedisStreamingApplication
    from redis_streaming_starter.settings import ActuatorSettings

__all__ = ["ActuatorContext"]


class ActuatorContext:
    """The application and its ``actuator`` settings, with the checks endpoints need.

    Errors are FastAPI ``HTTPException`` s, so they render as ``{"detail": "..."}`` wherever
    the router is mounted.
    """

    def __init__(self, app: RedisStreamingApplication) -> None:
        self.app = app
        self.settings: ActuatorSettings = app.settings.actuator
        self.base_path = self.settings.base_path
        token = self.settings.token
        self._token: bytes | None = token.get_secret_value().encode() if token else None
        self.secure_reads = reads_need_token(app.settings)
        self.links_base_url = self.settings.links_base_url or ""

    def router(self, *, sensitive: bool = False, **kwargs: Any) -> APIRouter:
        """An ``APIRouter`` for an endpoint module: every route that is not a ``GET`` needs
        the token, checked before the body is read (which is capped); ``sensitive`` routes
        (dead letters, env, configprops, thread dump) need it for reads too when
        ``actuator.secure_reads`` is on."""
        return APIRouter(route_class=route_class(self, sensitive), **kwargs)

    def is_exposed(self, endpoint: str) -> bool:
        """Whether the endpoint id is exposed (``actuator.expose`` minus ``actuator.exclude``)."""
        return self.settings.is_exposed(endpoint)

    def authorized(self, request: Request) -> bool:
        """True when a token is configured and the request carries it (constant-time check)."""
        if self._token is None:
            return False
        given = _bearer(request)
        return given is not None and hmac.compare_digest(given.encode(), self._token)

    async def require_token(self, request: Request) -> None:
        """The check of every POST/DELETE route (and of sensitive reads under
        ``actuator.secure_reads``): 403 when no token is configured, 401 when the request's
        bearer token is missing or wrong."""
        if self._token is None:
            raise HTTPException(
                403,
                "this operation changes the application and is disabled: set "
                "REDIS_STREAMING_ACTUATOR__TOKEN (actuator.token) and send it as "
                "'Authorization: Bearer <token>'",
            )
        if not self.authorized(request):
            raise HTTPException(
                401,
                "missing or wrong bearer token: send 'Authorization: Bearer <actuator.token>'",
                headers={"WWW-Authenticate": 'Bearer realm="actuator"'},
            )

    def show_details(self, request: Request) -> bool:
        """Whether health responses carry details (``actuator.show_details``)."""
        return _visible(self.settings.show_details, self, request)

    def show_values(self, request: Request) -> bool:
        """Whether /env and /configprops show values (``actuator.show_values``)."""
        return _visible(self.settings.show_values, self, request)

    def href(self, request: Request, path: str = "") -> str:
        """Link to ``base_path + path``: a path (with the mount's root path), after
        ``actuator.links_base_url`` when set; never built from the request's Host header,
        which any client can set."""
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return f"{self.links_base_url}{root}{self.base_path}{path}"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _visible(rule: str, ctx: ActuatorContext, request: Request) -> bool:
    if rule == "always":
        return True
    if rule == "never":
        return False
    return ctx.authorized(request)
