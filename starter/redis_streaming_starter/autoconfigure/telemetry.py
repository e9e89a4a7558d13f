"""Telemetry: the OpenTelemetry SDK with a Prometheus reader on the application's own registry,
the framework's instruments, the process metrics, and tracing. (The container builds the
gauges, ``TopicGauges``, from the ``metrics`` section directly; the HTTP server metrics are
recorded by ``actuator.http_metrics``.)"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

from redis_streaming import ConfigurationError, __version__
from redis_streaming.metrics import Metrics
from redis_streaming_starter.autoconfigure.process_metrics import ProcessMetrics
from redis_streaming_starter.settings import Settings, TracingSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "DURATION_BUCKETS_S",
    "ActuatorMetricReader",
    "make_metrics",
    "make_tracer",
    "meter_provider",
    "metric_reader",
    "tracer_provider",
]

log = logging.getLogger("redis_streaming_starter.telemetry")

# Handler durations in seconds: 0.5 ms to 10 s (the SDK's default buckets are for milliseconds).
DURATION_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
METER_NAME = "redis_streaming"


class ActuatorMetricReader(PrometheusMetricReader):
    """A Prometheus reader on its own ``CollectorRegistry`` (never the process-global one, so two
    applications in one process do not collide) that also keeps the last collected
    ``MetricsData`` for ``/actuator/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(support_collectors_without_names=True)
        self.latest: MetricsData | None = None
        self._lock = threading.Lock()
        super().__init__(registry=self.registry)

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        if metrics_data is not None:
            self.latest = metrics_data
        super()._receive_metrics(metrics_data, timeout_millis, **kwargs)

    def exposition(self, *, openmetrics_format: bool, names: list[str] | None) -> bytes:
        """Collect now and render the Prometheus (or OpenMetrics) text, optionally only the
        metric families in ``names`` (Prometheus names, e.g. ``redis_streaming_messages_acked``)."""
        registry: Any = self.registry
        if names:
            registry = self.registry.restricted_registry(names)
        render = openmetrics.generate_latest if openmetrics_format else generate_latest
        with self._lock:
            return render(registry)

    def snapshot(self) -> MetricsData | None:
        """Collect now and return the data points (cumulative since start)."""
        with self._lock:
            for _ in self.registry.collect():
                pass
            return self.latest


def metric_reader(settings: Settings) -> ActuatorMetricReader | None:
    """The reader behind /actuator/prometheus and /actuator/metrics; None when metrics are off."""
    return ActuatorMetricReader() if settings.metrics.enabled else None


def _resource(settings: Settings, instance_id: str | None) -> Resource:
    attrs = {"service.name": settings.app.name, "service.version": settings.app.version}
    if instance_id:
        attrs["service.instance.id"] = instance_id
    return Resource.create(attrs)


def meter_provider(
    settings: Settings, reader: ActuatorMetricReader | None, instance_id: str
) -> Iterator[MeterProvider | None]:
    """Resource: an SDK ``MeterProvider`` reading into ``reader`` (not installed globally, so
    the application's metrics stay its own), with the process metrics when ``metrics.process``
    is on; shut down with the container."""
    if reader is None:
        yield None
        return
    provider = MeterProvider(
        metric_readers=[reader],
        resource=_resource(settings, instance_id),
        views=[
            View(
                instrument_name="redis_streaming.handler.duration",
                aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS_S),
            )
        ],
    )
    if settings.metrics.process:
        ProcessMetrics(provider.get_meter("redis_streaming_starter.process", __version__))
    try:
        yield provider
    finally:
        provider.shutdown()


def make_metrics(provider: MeterProvider | None) -> Metrics:
    """The framework's instruments on ``provider`` (no-ops when metrics are off)."""
    if provider is None:
        return Metrics(meter=NoOpMeter(METER_NAME))
    return Metrics(meter=provider.get_meter(METER_NAME, __version__))


def tracer_provider(settings: Settings, instance_id: str) -> Iterator[Any]:
    """Resource: the tracer provider when ``tracing.enabled`` (else None).

    An SDK provider already installed globally (by the user, ``opentelemetry-instrument`` or an
    earlier application in this process) is used as it is; otherwise one is built with the
    configured exporter and, with ``tracing.set_global``, installed globally. Spans are flushed
    when the application stops.
    """
    cfg = settings.tracing
    if not cfg.enabled:
        yield None
        return
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    current = trace.get_tracer_provider()
    if cfg.set_global and isinstance(current, TracerProvider):
        log.info("tracing: using the tracer provider already installed globally")
        yield current
        return
    exporter = _span_exporter(cfg)
    provider = TracerProvider(
        resource=_resource(settings, instance_id),
        sampler=ParentBased(TraceIdRatioBased(cfg.sample_ratio)),
    )
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if cfg.set_global:
        trace.set_tracer_provider(provider)
    try:
        yield provider
    finally:
        if cfg.set_global:
            provider.force_flush()  # stays installed: OpenTelemetry allows one global per process
        else:
            provider.shutdown()


def _span_exporter(cfg: TracingSettings) -> SpanExporter | None:
    """The exporter ``tracing.exporter`` names: console, OTLP over HTTP (the ``otlp`` extra),
    or None for ``none``."""
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    if cfg.exporter == "console":
        return ConsoleSpanExporter()
    if cfg.exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigurationError(
                "REDIS_STREAMING_TRACING__EXPORTER=otlp needs the OTLP exporter: pip install "
                "'redis-streaming[otlp]' (or set the exporter to console or none)"
            ) from None
        return OTLPSpanExporter(endpoint=cfg.otlp_endpoint)
    return None


def make_tracer(provider: Any) -> Any:
    """The framework's tracer from ``provider``; None (no tracing work at all) when tracing is
    off."""
    if provider is None:
        return None
    return provider.get_tracer(METER_NAME, __version__)
