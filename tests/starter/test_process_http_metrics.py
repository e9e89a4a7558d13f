"""Process metrics and HTTP server metrics in /actuator/prometheus, read with Prometheus's own
text parsers, against a running application and a real server."""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import resource
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.responses import StreamingResponse
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from redis_streaming_starter import RedisStreamingApplication, Settings
from redis_streaming_starter.actuator.http_metrics import HttpServerMetrics
from redis_streaming_starter.autoconfigure.process_metrics import ProcessMetrics
from redis_streaming_starter.autoconfigure.telemetry import ActuatorMetricReader
from tests.helpers import wait_until

Samples = dict[str, list[tuple[dict[str, str], float]]]
linux = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads /proc")
DURATION = "http_server_request_duration_seconds"


def _settings(settings: Settings, **metrics: Any) -> Settings:
    data = settings.model_dump()
    data["actuator"] = {"expose": ["*"], "token": "a-test-token-of-32-characters-xx"}
    data["metrics"] = {**data["metrics"], **metrics}
    return Settings.model_validate(data)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[RedisStreamingApplication]:
    application = RedisStreamingApplication(settings=_settings(settings))
    async with application.lifespan():
        yield application


def _client(asgi: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def scrape(http: httpx.AsyncClient) -> tuple[Samples, dict[str, str]]:
    """GET /actuator/prometheus, parsed: sample name -> [(labels, value)], and family -> type."""
    resp = await http.get("/actuator/prometheus")
    assert resp.status_code == 200, resp.text
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(resp.text):
        types[family.name] = family.type
        for s in family.samples:
            labels = {k: v for k, v in s.labels.items() if not k.startswith("otel_scope_")}
            samples.setdefault(s.name, []).append((labels, s.value))
    return samples, types


def value(found: Samples, name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    matching = [v for lab, v in found.get(name, []) if labels.items() <= lab.items()]
    assert len(matching) == 1, f"{name}{labels}: {found.get(name)}"
    return matching[0]


def count(found: Samples, route: str, **labels: str) -> float:
    """Requests recorded for ``route`` (0 when no series has it yet)."""
    wanted = {"http_route": route, **labels}
    return sum(v for lab, v in found.get(f"{DURATION}_count", []) if wanted.items() <= lab.items())


@linux
async def test_process_metrics_are_exposed_with_their_prometheus_names(
    app: RedisStreamingApplication,
) -> None:
    async with _client(app.asgi) as http:
        before = os.times()
        found, types = await scrape(http)
        after = os.times()
        om = await http.get(
            "/actuator/prometheus", headers={"Accept": "application/openmetrics-text"}
        )

    assert types["process_cpu_time_seconds"] == "counter"
    gauges = (
        "process_memory_usage_bytes", "process_memory_virtual_bytes", "process_thread_count",
        "process_unix_file_descriptor_count", "process_unix_file_descriptor_limit",
        "process_uptime_seconds", "process_start_time_seconds", "process_cpu_utilization",
        "python_info",
    )  # fmt: skip
    for family in gauges:
        assert types[family] == "gauge", family
    for family in ("collections", "collected_objects", "uncollectable_objects"):
        assert types[f"cpython_gc_{family}"] == "counter"
        generations = {
            lab["cpython_gc_generation"] for lab, _ in found[f"cpython_gc_{family}_total"]
        }
        assert generations == {"0", "1", "2"}

    # CPU seconds by mode, read between two os.times() of this very process
    user = value(found, "process_cpu_time_seconds_total", cpu_mode="user")
    system = value(found, "process_cpu_time_seconds_total", cpu_mode="system")
    assert before.user <= user <= after.user
    assert before.system <= system <= after.system
    for mode in ("user", "system"):
        assert 0 <= value(found, "process_cpu_utilization", cpu_mode=mode) <= 1

    rss = value(found, "process_memory_usage_bytes")
    assert 10 * 2**20 < rss < value(found, "process_memory_virtual_bytes")
    assert (
        value(found, "process_unix_file_descriptor_limit")
        == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    )
    assert value(found, "process_thread_count") >= 1
    assert value(found, "process_unix_file_descriptor_count") >= 3  # stdin, stdout, stderr
    start = value(found, "process_start_time_seconds")
    uptime = value(found, "process_uptime_seconds")
    assert abs(start + uptime - time.time()) < 5
    info = found["python_info"]
    assert info == [(
        {"implementation": platform.python_implementation(),
         "version": platform.python_version(), "major": str(sys.version_info.major),
         "minor": str(sys.version_info.minor), "patchlevel": str(sys.version_info.micro)},
        1.0,
    )]  # fmt: skip

    # the OpenMetrics rendering parses too, with the units declared
    families = {f.name: f for f in openmetrics_families(om.text)}
    assert families["process_cpu_time_seconds"].unit == "seconds"
    assert families["process_memory_usage_bytes"].unit == "bytes"
    assert families["python_info"].type == "gauge"

    psutil = pytest.importorskip("psutil")  # an independent reading of the same process
    me = psutil.Process()
    assert abs(start - me.create_time()) < 1
    assert abs(rss - me.memory_info().rss) < 32 * 2**20


@linux
async def test_process_metrics_move_with_the_process(app: RedisStreamingApplication) -> None:
    async with _client(app.asgi) as http:
        before, _ = await scrape(http)
        fds = [os.dup(2) for _ in range(40)]
        try:
            opened, _ = await scrape(http)
        finally:
            for fd in fds:
                os.close(fd)
        closed, _ = await scrape(http)
        name = "process_unix_file_descriptor_count"
        assert value(opened, name) >= value(before, name) + 40
        assert value(closed, name) <= value(opened, name) - 40

        gc.collect(2)
        ballast = b"x" * (64 * 2**20)  # written, so resident
        cpu_start = time.process_time()
        while time.process_time() - cpu_start < 0.2:  # CPU time, not wall time
            sum(range(1000))
        after, _ = await scrape(http)
        del ballast

    gen2 = "cpython_gc_collections_total"
    assert (
        value(after, gen2, cpython_gc_generation="2")
        >= value(before, gen2, cpython_gc_generation="2") + 1
    )
    rss = "process_memory_usage_bytes"
    assert value(after, rss) >= value(before, rss) + 48 * 2**20
    cpu = "process_cpu_time_seconds_total"
    assert value(after, cpu, cpu_mode="user") >= value(before, cpu, cpu_mode="user") + 0.15
    assert value(after, "process_cpu_utilization", cpu_mode="user") > 0
    uptime = "process_uptime_seconds"
    assert value(after, uptime) > value(before, uptime)


async def test_requests_are_counted_by_route_template_method_and_status(
    app: RedisStreamingApplication,
) -> None:
    asgi = app.asgi

    @asgi.get("/orders/{order_id}")
    async def order(order_id: int) -> dict[str, int]:
        if order_id == 0:
            raise RuntimeError("boom")
        return {"id": order_id}

    async with _client(asgi) as http:
        before, _ = await scrape(http)
        assert (await http.get("/orders/1")).status_code == 200
        assert (await http.get("/orders/2")).status_code == 200
        assert (await http.get("/orders/0")).status_code == 500  # raised: the server's 500
        assert (await http.get("/orders/abc")).status_code == 422
        assert (await http.get("/actuator/metrics/no.such.one")).status_code == 404
        assert (await http.get("/actuator/metrics/no.such.two")).status_code == 404
        assert (await http.get("/no/such/path/123")).status_code == 404
        assert (await http.delete("/actuator/topics/orders")).status_code == 401  # no token
        assert (await http.request("BREW", "/orders/3")).status_code == 405
        found, types = await scrape(http)

    assert types[DURATION] == "histogram"

    def grew(route: str, **labels: str) -> float:
        return count(found, route, **labels) - count(before, route, **labels)

    assert (
        grew("/orders/{order_id}", http_response_status_code="200", http_request_method="GET") == 2
    )
    assert grew("/orders/{order_id}", http_response_status_code="500") == 1
    assert grew("/orders/{order_id}", http_response_status_code="422") == 1
    assert grew("/orders/{order_id}", http_request_method="_OTHER") == 1
    assert grew("/actuator/metrics/{name}", http_response_status_code="404") == 2
    assert grew("/actuator/topics/{topic}", http_request_method="DELETE") == 1
    assert grew("UNMATCHED", http_response_status_code="404") == 1
    assert grew("/actuator/prometheus", http_response_status_code="200") == 1  # the first scrape
    routes = {lab["http_route"] for lab, _ in found[f"{DURATION}_count"]}
    assert not any(r[:1] == "/" and any(c.isdigit() for c in r) for r in routes), routes
    assert not any("no.such" in r or "no/such" in r for r in routes), routes
    for labels, _ in found[f"{DURATION}_count"]:
        assert set(labels) == {"http_request_method", "http_route", "http_response_status_code",
                               "url_scheme"}  # fmt: skip
    buckets = {lab["le"] for lab, _ in found[f"{DURATION}_bucket"]}
    assert {"0.005", "0.075", "10.0", "+Inf"} <= buckets  # seconds, OpenTelemetry's advice
    # the scrape itself is the one request in progress while it is collected
    assert value(found, "http_server_active_requests", http_request_method="GET") == 1


async def test_a_streaming_response_streams_and_is_measured_when_it_ends(
    app: RedisStreamingApplication,
) -> None:
    release = asyncio.Event()

    @app.asgi.get("/stream/{n}")
    async def stream(n: int) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            await release.wait()
            yield b"last\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app.asgi, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            await wait_until(lambda: server.started, 10, "uvicorn to start")
            async with http.stream("GET", "/stream/7") as resp:
                chunks = resp.aiter_raw()
                assert await asyncio.wait_for(anext(chunks), 10) == b"first\n"  # not buffered
                during, _ = await scrape(http)
                release.set()
                assert b"".join([c async for c in chunks]) == b"last\n"
            after, _ = await scrape(http)
    finally:
        server.should_exit = True
        await serving
        sock.close()
    assert value(during, "http_server_active_requests", http_request_method="GET") == 2
    assert count(during, "/stream/{n}") == 0  # recorded when the body has been sent
    assert count(after, "/stream/{n}", http_response_status_code="200") == 1
    assert value(after, "http_server_active_requests", http_request_method="GET") == 1


async def test_the_actuator_on_its_own_port_is_measured_too(settings: Settings) -> None:
    data = _settings(settings).model_dump()
    data["actuator"]["port"] = 1  # never bound here: management_asgi is served by the test
    application = RedisStreamingApplication(settings=Settings.model_validate(data))
    async with application.lifespan(), _client(application.management_asgi) as http:
        assert (await http.get("/actuator/health")).status_code == 200
        found, _ = await scrape(http)
    assert count(found, "/actuator/health", http_response_status_code="200") == 1


def _metric_families(found: Samples) -> set[str]:
    return {name for name in found if name.startswith(("process_", "cpython_", "python_", "http_"))}


async def test_settings_turn_them_off(settings: Settings) -> None:
    quiet = RedisStreamingApplication(settings=_settings(settings, process=False, http=False))
    async with quiet.lifespan(), _client(quiet.asgi) as http:
        await http.get("/actuator/health")
        found, _ = await scrape(http)
    assert _metric_families(found) == set()

    http_only = RedisStreamingApplication(settings=_settings(settings, process=False))
    async with http_only.lifespan(), _client(http_only.asgi) as http:
        found, _ = await scrape(http)
    assert _metric_families(found) == {"http_server_active_requests"}  # the scrape in progress

    off = RedisStreamingApplication(settings=_settings(settings, enabled=False))
    assert not any(m.cls is HttpServerMetrics for m in off.asgi.user_middleware)
    assert not any(m.cls is HttpServerMetrics for m in off.management_asgi.user_middleware)
    async with off.lifespan(), _client(off.asgi) as http:
        assert (await http.get("/actuator/prometheus")).status_code == 404
        assert (await http.get("/actuator/health")).status_code == 200


def test_without_proc_only_the_portable_process_metrics_are_registered(tmp_path: Path) -> None:
    reader = ActuatorMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        ProcessMetrics(provider.get_meter("t"), proc=tmp_path / "missing")
        text = reader.exposition(openmetrics_format=False, names=None).decode()
    finally:
        provider.shutdown()
    names = {f.name for f in text_string_to_metric_families(text)} - {"target_info"}
    assert names == {
        "process_cpu_time_seconds", "process_cpu_utilization",
        "process_unix_file_descriptor_limit", "python_info", "cpython_gc_collections",
        "cpython_gc_collected_objects", "cpython_gc_uncollectable_objects",
    }  # fmt: skip
