"""HTTP server metrics: an ASGI middleware recording ``http.server.request.duration`` and
``http.server.active_requests`` as OpenTelemetry's semantic conventions name them.

The route label is the matched path *template* (``/actuator/metrics/{name}``), never the raw
path, so the number of series stays bounded whatever clients request; a request no route
matches (404, a trailing-slash redirect) gets ``UNMATCHED``. A pure ASGI middleware: responses
pass through untouched (streaming ones too) and the duration ends when the app returns, after
the last byte of the body.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Histogram, MeterProvider, Observation
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from redis_streaming import __version__

if TYPE_CHECKING:
    from fastapi import FastAPI

    from redis_streaming_starter.application import RedisStreamingApplication

__all__ = ["UNMATCHED", "HttpServerMetrics", "add_http_metrics"]

UNMATCHED = "UNMATCHED"
"""The route label of a request no route matched."""

# OpenTelemetry's recommended buckets for http.server.request.duration, in seconds.
BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# Any other method is recorded as _OTHER: a client cannot create series at will.
_METHODS = frozenset(
    ["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"]
)


class HttpServerMetrics:
    """ASGI middleware: each HTTP request's duration, labelled with ``http.request.method``,
    ``http.route`` (the template), ``http.response.status_code`` and ``url.scheme``, and the
    requests in progress by method and scheme. A request that raises before responding is
    recorded with status 500 (what the server answers). ``meter_provider`` is called at the
    first request (so the application's provider is built by then); None turns it off."""

    def __init__(self, app: ASGIApp, meter_provider: Callable[[], MeterProvider | None]) -> None:
        self.app = app
        self._provider = meter_provider
        self._duration: Histogram | None = None
        # In progress, by (method, scheme): plain integers observed when collected, which costs
        # a request far less than two SDK recordings.
        self._active: dict[tuple[str, str], int] = {}

    def _resolve(self) -> Histogram | None:
        provider = self._provider()
        if provider is None:
            return None
        meter = provider.get_meter("redis_streaming_starter.http", __version__)
        meter.create_observable_up_down_counter(
            "http.server.active_requests", [self._observe_active], unit="{request}",
            description="HTTP server requests in progress.",
        )  # fmt: skip
        self._duration = meter.create_histogram(
            "http.server.request.duration", unit="s",
            description="Duration of HTTP server requests, to the last byte of the response.",
            explicit_bucket_boundaries_advisory=BUCKETS_S,
        )  # fmt: skip
        return self._duration

    def _observe_active(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(n, {"http.request.method": method, "url.scheme": scheme})
            for (method, scheme), n in list(self._active.items())
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        duration = self._duration or self._resolve()
        if duration is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _METHODS else "_OTHER"
        scheme = "https" if scope.get("scheme") == "https" else "http"
        key = (method, scheme)
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        active = self._active
        active[key] = active.get(key, 0) + 1
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            duration.record(
                time.perf_counter() - start,
                {
                    "http.request.method": method,
                    "http.route": route_template(scope),
                    "http.response.status_code": status or 500,
                    "url.scheme": scheme,
                },
            )
            active[key] -= 1


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request, with the application's root path
    (a mount's prefix), or ``UNMATCHED``.

    FastAPI >= 0.165 keeps an included router as one nested route: ``scope["route"]`` is then
    the route as declared in its own router (``/metrics``, without the prefixes it was included
    under); the full template is in FastAPI's effective route context. Earlier versions and
    plain Starlette routes put the full route in ``scope["route"]``.
    """
    fastapi_scope = scope.get("fastapi")
    context: Any = None
    if isinstance(fastapi_scope, dict):
        context = fastapi_scope.get("effective_route_context")
    path = (
        getattr(getattr(context, "starlette_route", None), "path_format", None)
        or getattr(context, "path_format", None)
        or getattr(scope.get("route"), "path_format", None)
    )
    if not isinstance(path, str) or not path:
        return UNMATCHED
    return str(scope.get("root_path", "")).rstrip("/") + path


def add_http_metrics(app: FastAPI, application: RedisStreamingApplication) -> None:
    """Measure ``app``'s requests into ``application``'s metrics, when ``metrics.enabled`` and
    ``metrics.http`` are on (otherwise nothing is added)."""
    settings = application.settings.metrics
    if settings.enabled and settings.http:
        app.add_middleware(HttpServerMetrics, meter_provider=application.container.meter_provider)
