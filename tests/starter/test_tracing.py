"""``tracing.enabled``: a trace runs from the producer through the listener and is exported over
OTLP/HTTP to a collector (here: a small HTTP server in the test that decodes the protobuf)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from redis_streaming import ConfigurationError, Producer
from redis_streaming_starter import RedisStreamingApplication, Settings, resolve
from tests.helpers import wait_until
from tests.starter.apps import metered


class Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.paths: list[str] = []
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                self.server.spans.extend(ss.spans)
        self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _settings(settings: Settings, **tracing: Any) -> Settings:
    data = settings.model_dump()
    data["tracing"] = {"enabled": True, "set_global": False, **tracing}
    return Settings.model_validate(data)


async def test_trace_continues_from_producer_to_listener_and_is_exported(
    settings: Settings, collector: Collector
) -> None:
    metered.handled.clear()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}/v1/traces"
    app = RedisStreamingApplication(
        settings=_settings(settings, exporter="otlp", otlp_endpoint=endpoint),
        listener_packages=["tests.starter.apps.metered"],
    )
    async with app.lifespan():
        producer: Producer = await resolve(app.container.producer)
        await producer.send("metered", {"n": 1, "mode": "ok"}, key="k")
        await wait_until(lambda: metered.handled == [1], 15)
    # stopping the application flushed the spans
    assert collector.paths
    assert set(collector.paths) == {"/v1/traces"}
    by_name = {s.name: s for s in collector.spans}
    send, process = by_name["send metered"], by_name["process metered"]
    assert send.trace_id == process.trace_id
    assert process.parent_span_id == send.span_id
    assert process.kind == process.SPAN_KIND_CONSUMER
    attrs = {a.key: a.value for a in process.attributes}
    assert attrs["messaging.destination.name"].string_value == "metered"
    assert attrs["messaging.consumer.group.name"].string_value == "meters"


async def test_tracing_off_adds_no_trace_headers(settings: Settings) -> None:
    app = RedisStreamingApplication(settings=settings)
    async with app.lifespan():
        assert await resolve(app.container.tracer) is None
        producer: Producer = await resolve(app.container.producer)
        await producer.send("plain", "x")
        redis = await resolve(app.container.redis)
        keys = [k async for k in redis.scan_iter(match=f"{settings.mq.namespace}:stream:*")]
        entries = await redis.xrange(keys[0])
        assert b"headers" not in entries[0][1]


def test_otlp_without_the_exporter_package_says_what_to_install(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    from redis_streaming_starter.autoconfigure.telemetry import tracer_provider

    with pytest.raises(ConfigurationError, match=r"redis-streaming\[otlp\]"):
        next(tracer_provider(_settings(settings, exporter="otlp"), "id"))
