"""Active health checks against real HTTP and TCP endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis.asyncio as aioredis

from redis_streaming.embedded import free_port
from redis_streaming.registry import (
    HealthChecker,
    ServiceDiscovery,
    ServiceEventType,
    ServiceInstance,
    ServiceRegistry,
)
from redis_streaming.registry._probes import http_probe, tcp_probe
from tests.helpers import fast_registry, wait_until
from tests.registry.support import events_until_quiet, inst, next_event


class HealthServer(ThreadingHTTPServer):
    """Answers ``GET <path>`` with ``status``; 404 for any other path."""

    daemon_threads = True

    def __init__(self, paths: tuple[str, ...]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.paths = paths
        self.status = 200
        self.hits = 0


class _Handler(BaseHTTPRequestHandler):
    server: HealthServer

    def do_GET(self) -> None:
        self.server.hits += 1
        status = self.server.status if self.path in self.server.paths else 404
        body = b'{"status":"UP"}' if status == 200 else b'{"status":"DOWN"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


@pytest.fixture
def http_server() -> Iterator[HealthServer]:
    server = HealthServer(("/actuator/health", "/custom?deep=1"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (kernel backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextlib.asynccontextmanager
async def checking(
    redis: aioredis.Redis, namespace: str, *instances: ServiceInstance, **extra: object
) -> AsyncIterator[tuple[ServiceDiscovery, HealthChecker]]:
    opts = fast_registry(namespace, **extra)
    registry, discovery = ServiceRegistry(redis, opts), ServiceDiscovery(redis, opts)
    for i in instances:
        await registry.register(i)
    async with registry.registration(instances[0]):  # heartbeats keep the first one alive
        checker = HealthChecker(registry, discovery, opts)
        try:
            yield discovery, checker
        finally:
            await checker.stop()


async def healthy_ids(discovery: ServiceDiscovery) -> list[str]:
    return [i.instance_id for i in await discovery.instances("orders")]


async def test_http_health_marks_unhealthy_and_back(
    rs_redis: aioredis.Redis, rs_namespace: str, http_server: HealthServer
) -> None:
    web = inst("web", http_server.server_port)  # probed at /actuator/health
    url = f"http://127.0.0.1:{http_server.server_port}/custom?deep=1"
    custom = inst("custom", 1, protocol="grpc", metadata={"health_url": url})
    async with (
        checking(rs_redis, rs_namespace, web, custom, ttl_s=30) as (discovery, checker),
        discovery.watch("orders") as watch,
    ):
        await checker.start()
        await wait_until(lambda: checker.passes >= 2, 5, "two passes")
        assert await healthy_ids(discovery) == ["custom", "web"]
        assert await events_until_quiet(watch, 0.3) == []  # healthy stays healthy: no writes

        http_server.status = 503
        first, second = await next_event(watch), await next_event(watch)
        assert {(e.type, e.instance_id) for e in (first, second)} == {
            (ServiceEventType.UPDATED, "custom"), (ServiceEventType.UPDATED, "web"),
        }  # fmt: skip
        assert first.instance is not None
        assert not first.instance.healthy
        assert await healthy_ids(discovery) == []
        everyone = await discovery.instances("orders", healthy_only=False)
        assert [i.healthy for i in everyone] == [False, False]
        passes = checker.passes
        await wait_until(lambda: checker.passes >= passes + 3, 5, "more passes")
        assert await events_until_quiet(watch, 0.2) == []  # still failing: no new event

        http_server.status = 200
        back = [await next_event(watch), await next_event(watch)]
        assert all(e.instance is not None and e.instance.healthy for e in back)
        assert await healthy_ids(discovery) == ["custom", "web"]
        assert checker.last_error is None


async def test_tcp_health_follows_a_listening_socket(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    port = free_port()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", port)
    cache = inst("cache", port, protocol="tcp")
    try:
        async with checking(rs_redis, rs_namespace, cache, ttl_s=30) as (discovery, checker):
            await checker.start()
            await wait_until(lambda: checker.passes >= 1, 5, "a pass")
            assert await healthy_ids(discovery) == ["cache"]

            server.close()
            await server.wait_closed()
            await wait_until(lambda: _ids_are(discovery, []), 5, "unhealthy")

            server = await asyncio.start_server(accept, "127.0.0.1", port)
            await wait_until(lambda: _ids_are(discovery, ["cache"]), 5, "healthy again")
    finally:
        server.close()
        await server.wait_closed()


async def _ids_are(discovery: ServiceDiscovery, expected: list[str]) -> bool:
    return await healthy_ids(discovery) == expected


async def test_probe_failures_and_timeouts(silent_port: int, http_server: HealthServer) -> None:
    base = f"http://127.0.0.1:{http_server.server_port}"
    assert await http_probe(f"{base}/actuator/health", 2)
    assert not await http_probe(f"{base}/elsewhere", 2)  # 404
    assert not await http_probe(f"http://127.0.0.1:{silent_port}/", 0.2)  # never answers
    assert not await http_probe(f"http://127.0.0.1:{free_port()}/", 2)  # refused
    assert not await http_probe("ftp://127.0.0.1/", 2)
    assert not await http_probe("http://127.0.0.1:port/", 0.2)  # malformed URL
    assert await tcp_probe("127.0.0.1", silent_port, 2)
    assert not await tcp_probe("127.0.0.1", free_port(), 2)


async def test_checks_run_concurrently_within_the_bound(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    open_now, most = 0, 0
    release = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.15):
                await release.wait()
        open_now -= 1
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/health"
    many = [inst(f"i{n:02}", 7000 + n, metadata={"health_url": url}) for n in range(12)]
    skipped = inst("skipped", 1, protocol="tcp", metadata={"health_check": "none"})
    try:
        async with checking(
            rs_redis, rs_namespace, *many, skipped, ttl_s=30, health_check_concurrency=4,
            health_check_timeout_s=1.0, health_check_interval_s=5,
        ) as (discovery, checker):  # fmt: skip
            results = await checker.run_once()
            assert most == 4
            assert len(results) == 12  # every probed instance; "skipped" is not checked
            assert not any(results.values())  # held connections never answer with a status
            assert await healthy_ids(discovery) == ["skipped"]
    finally:
        server.close()
        await server.wait_closed()
