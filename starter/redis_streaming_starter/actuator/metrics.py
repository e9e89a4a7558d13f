"""Actuator endpoints ``/metrics``, ``/metrics/{name}`` (Spring Boot shapes) and ``/prometheus``.

Both read the application's :class:`ActuatorMetricReader`; the gauges that come from Redis (lag,
pending, lengths) are re-read first when older than ``metrics.gauge_max_age_s``, with a time
limit, so a scrape never waits long on a slow or unreachable server (the last values stay).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from opentelemetry.sdk.metrics.export import Gauge, Histogram, Metric, MetricsData, Sum
from pydantic import BaseModel, Field

from redis_streaming_starter.actuator.context import ActuatorContext
from redis_streaming_starter.autoconfigure.telemetry import ActuatorMetricReader

__all__ = ["MetricNames", "MetricResponse", "routes"]

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TEXT = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class MetricNames(BaseModel):
    """``GET /metrics``."""

    names: list[str] = Field(description="Names of every metric recorded so far, sorted.")


class Measurement(BaseModel):
    statistic: str = Field(description="COUNT, TOTAL, TOTAL_TIME, MAX or VALUE.")
    value: float


class AvailableTag(BaseModel):
    tag: str
    values: list[str]


class MetricResponse(BaseModel):
    """``GET /metrics/{name}``, as Spring Boot Actuator shapes it."""

    name: str
    description: str | None = None
    baseUnit: str | None = None
    measurements: list[Measurement]
    availableTags: list[AvailableTag]


def _metrics(data: MetricsData | None) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    if data is None:
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out[metric.name] = metric
    return out


def _base_unit(unit: str | None) -> str | None:
    if not unit:
        return None
    known = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": None}
    if unit in known:
        return known[unit]
    return unit.strip("{}") + "s" if unit.startswith("{") else unit


def _parse_tags(tags: list[str]) -> dict[str, str]:
    wanted: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition(":")
        if not sep or not key:
            raise HTTPException(
                400, f"tag {tag!r} is not KEY:VALUE; filter like ?tag=topic:orders&tag=partition:0"
            )
        wanted[key] = value
    return wanted


def describe(metric: Metric, wanted: dict[str, str]) -> MetricResponse:
    """Sum the data points whose attributes match ``wanted`` into Spring's measurements."""
    points = [
        p
        for p in metric.data.data_points
        if all(str((p.attributes or {}).get(k)) == v for k, v in wanted.items())
    ]
    tags: dict[str, set[str]] = defaultdict(set)
    for p in points:
        for key, value in (p.attributes or {}).items():
            if key not in wanted:
                tags[key].add(str(value))
    data = metric.data

    def values(field: str) -> list[float]:
        return [float(getattr(p, field)) for p in points]

    def m(statistic: str, value: float) -> Measurement:
        return Measurement(statistic=statistic, value=value)

    if isinstance(data, Histogram):
        total = "TOTAL_TIME" if metric.unit == "s" else "TOTAL"
        measurements = [
            m("COUNT", sum(values("count"))),
            m(total, sum(values("sum"))),
            m("MAX", max(values("max"), default=0.0)),
        ]
    elif isinstance(data, Sum) and data.is_monotonic:
        measurements = [m("COUNT", sum(values("value")))]
    elif isinstance(data, Sum | Gauge):
        measurements = [m("VALUE", sum(values("value")))]
    else:  # pragma: no cover - exponential histograms are not configured
        measurements = []
    return MetricResponse(
        name=metric.name,
        description=metric.description or None,
        baseUnit=_base_unit(metric.unit),
        measurements=measurements,
        availableTags=[AvailableTag(tag=k, values=sorted(v)) for k, v in sorted(tags.items())],
    )


def routes(ctx: ActuatorContext) -> APIRouter:
    """The metrics endpoints that ``ctx`` exposes (none when ``metrics.enabled`` is false)."""
    router = ctx.router()
    app = ctx.app
    if not app.settings.metrics.enabled:
        return router

    async def reader() -> ActuatorMetricReader:
        await app.refresh_gauges()
        found: ActuatorMetricReader | None = app.container.metric_reader()
        if found is None:  # pragma: no cover - enabled implies a reader
            raise HTTPException(404, "metrics are disabled (REDIS_STREAMING_METRICS__ENABLED)")
        return found

    if ctx.is_exposed("metrics"):

        @router.get("/metrics", summary="Names of the recorded metrics")
        async def metric_names() -> MetricNames:
            source = await reader()
            data = await asyncio.to_thread(source.snapshot)
            return MetricNames(names=sorted(_metrics(data)))

        @router.get(
            "/metrics/{name}",
            summary="One metric: measurements and tags",
            responses={404: {"description": "No metric of that name"}},
        )
        async def metric(
            name: str,
            tag: list[str] = Query(  # noqa: B008 - FastAPI's declaration style
                default_factory=list,
                description="KEY:VALUE; repeat to narrow, e.g. tag=topic:orders&tag=group:billing",
            ),
        ) -> MetricResponse:
            wanted = _parse_tags(tag)
            source = await reader()
            data = await asyncio.to_thread(source.snapshot)
            found = _metrics(data).get(name)
            if found is None:
                raise HTTPException(
                    404, f"no metric {name!r}; GET {ctx.base_path}/metrics lists the names"
                )
            return describe(found, wanted)

    if ctx.is_exposed("prometheus"):

        @router.get(
            "/prometheus",
            summary="Prometheus text exposition (OpenMetrics when the Accept header asks)",
            response_class=Response,
            responses={200: {"content": {PROMETHEUS_TEXT: {}, OPENMETRICS_TEXT: {}}}},
        )
        async def prometheus(
            request: Request,
            includedNames: str | None = Query(
                None, description="Comma-separated metric family names to include."
            ),
        ) -> Response:
            names = [n.strip() for n in (includedNames or "").split(",") if n.strip()] or None
            om = "application/openmetrics-text" in request.headers.get("accept", "")
            source = await reader()
            body = await asyncio.to_thread(
                source.exposition, openmetrics_format=om, names=_family_names(names)
            )
            return Response(body, media_type=OPENMETRICS_TEXT if om else PROMETHEUS_TEXT)

    return router


def _family_names(names: list[str] | None) -> list[str] | None:
    """Sample names of each family (``x`` also selects ``x_total``, ``x_bucket`` ...)."""
    if names is None:
        return None
    suffixes = ("", "_total", "_created", "_bucket", "_count", "_sum", "_info")
    return [n + s for n in names for s in suffixes]
