"""Expiry of crashed instances: a SIGKILLed process, the sweeper, concurrent sweepers."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from redis_streaming.registry import (
    RegistryKeys,
    RegistryOptions,
    RegistrySweeper,
    ServiceDiscovery,
    ServiceEventType,
    ServiceRegistry,
    scripts,
)
from redis_streaming.testing import RedisServer, client_from_url
from tests.helpers import fast_registry, wait_until
from tests.registry.support import (
    events_until_quiet,
    gone,
    inst,
    keys_of,
    next_event,
    summary,
)

SCRIPT = Path(__file__).with_name("instance_proc.py")


Spawn = Callable[[RegistryOptions, str, int], subprocess.Popen[str]]


@pytest.fixture
def spawn(rs_server_url: str) -> Iterator[Spawn]:
    """Starts a process that registers instance ``instance_id`` of "orders" on ``port`` and
    heartbeats until SIGTERM (``instance_proc.py``); after the test, each one still running is
    killed, and all are reaped."""
    started: list[subprocess.Popen[str]] = []

    def start(options: RegistryOptions, instance_id: str, port: int) -> subprocess.Popen[str]:
        args = [rs_server_url, options.model_dump_json(), "orders", instance_id, str(port)]
        proc = subprocess.Popen([sys.executable, str(SCRIPT), *args], stdout=subprocess.PIPE,
                                text=True)  # fmt: skip
        started.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


@pytest.mark.slow
async def test_killed_instance_disappears_and_clean_stop_deregisters(
    rs_redis: aioredis.Redis, rs_namespace: str, spawn: Spawn
) -> None:
    opts = fast_registry(rs_namespace)
    discovery = ServiceDiscovery(rs_redis, opts)
    sweeper = RegistrySweeper(rs_redis, opts)
    async with sweeper:
        killed = spawn(opts, "doomed", 9001)
        clean = spawn(opts, "polite", 9002)
        async with discovery.watch("orders", initial=True) as watch:
            assert sorted(summary([await next_event(watch), await next_event(watch)])) == [
                ("ADDED", "doomed"), ("ADDED", "polite"),
            ]  # fmt: skip
            await asyncio.sleep(opts.ttl_s * 1.5)  # heartbeats keep both alive past the TTL
            assert len(await discovery.instances("orders")) == 2

            killed.send_signal(signal.SIGKILL)
            start = time.monotonic()
            event = await next_event(watch, opts.ttl_s + opts.sweep_interval_s + 3)
            took = time.monotonic() - start
            assert (event.type, event.instance_id) == (ServiceEventType.REMOVED, "doomed")
            assert event.instance is not None
            assert event.instance.port == 9001
            # Gone within the TTL plus one sweep (and some slack for a loaded machine).
            assert took <= opts.ttl_s + opts.sweep_interval_s + 1.0, took
            assert [i.instance_id for i in await discovery.instances("orders")] == ["polite"]

            clean.send_signal(signal.SIGTERM)
            assert clean.wait(10) == 0
            event = await next_event(watch, 2)  # at once, not after the TTL
            assert (event.type, event.instance_id) == (ServiceEventType.REMOVED, "polite")
            assert await discovery.instances("orders") == []
            assert await events_until_quiet(watch, 0.5) == []  # one REMOVED each
        await wait_until(lambda: _no_keys(rs_redis, rs_namespace), 5, "the keys to go")
        assert sweeper.last_error is None


async def _no_keys(redis: aioredis.Redis, namespace: str) -> bool:
    return await redis.keys(f"{namespace}:*") == []


@pytest.mark.cluster
async def test_concurrent_sweepers_emit_one_removed_per_instance(
    rs_redis: aioredis.Redis, rs_namespace: str, rs_url: str
) -> None:
    opts = fast_registry(rs_namespace, sweep_interval_s=0.05)
    registry, discovery = ServiceRegistry(rs_redis, opts), ServiceDiscovery(rs_redis, opts)
    keys = RegistryKeys(rs_namespace)
    services = ["orders", "billing"]
    # Separate connections, as separate processes would have.
    clients = [client_from_url(rs_url) for _ in range(3)]
    sweepers = [RegistrySweeper(clients[n % 3], opts) for n in range(6)]
    watches = [discovery.watch(s) for s in services]
    try:
        for w in watches:
            await w.start()
        for service in services:
            for n in range(20):
                await registry.register(inst(f"i{n}", 8000 + n, service=service))
        await registry.register(inst("db", 5432, service="billing", ephemeral=False))
        for s in sweepers:
            await s.start()
        expected = sorted(f"i{n}" for n in range(20))
        for watch in watches:
            events = []
            while sum(e.type is ServiceEventType.REMOVED for e in events) < 20:
                events.append(await next_event(watch))
            events += await events_until_quiet(watch, 0.3)  # and no second REMOVED
            by_type = {
                t: sorted(e.instance_id for e in events if e.type is t) for t in ServiceEventType
            }
            ephemeral = [i for i in by_type[ServiceEventType.ADDED] if i != "db"]
            assert (ephemeral, by_type[ServiceEventType.REMOVED]) == (expected, expected)
            assert by_type[ServiceEventType.UPDATED] == []
        assert sum(s.removed for s in sweepers) == 40
        left = sorted(
            k.encode()
            for k in (keys.names, keys.instances("billing"), keys.instance("billing", "db"))
        )

        async def only_billing_left() -> bool:
            return await keys_of(rs_redis, rs_namespace) == left

        await wait_until(only_billing_left, 5, "orders to leave the names set")
        assert await discovery.services() == ["billing"]
    finally:
        for s in sweepers:
            await s.stop()
        for w in watches:
            await w.aclose()
        for c in clients:
            await c.aclose()


async def test_sweep_rechecks_each_candidate(rs_redis: aioredis.Redis, rs_namespace: str) -> None:
    opts = fast_registry(rs_namespace)
    registry, keys = ServiceRegistry(rs_redis, opts), RegistryKeys(rs_namespace)
    a, b = inst("a", service="orders"), inst("b", service="billing")
    await registry.register(a)
    await registry.register(b)
    discovery = ServiceDiscovery(rs_redis, opts)
    await wait_until(lambda: gone(discovery, "orders"), 5, "a to expire")
    await wait_until(lambda: gone(discovery, "billing"), 5, "b to expire")
    # A heartbeat between the sweeper's candidate read and its sweep script wins.
    assert await scripts.EXPIRED(rs_redis, [keys.instances("orders")], [100]) == [1, b"a"]
    assert (await registry.heartbeat(a)).reregistered
    sweep_keys = [keys.instances("orders"), keys.instance("orders", "a")]
    sweep_args = [keys.events("orders"), "orders", "a"]
    assert await scripts.SWEEP(rs_redis, sweep_keys, sweep_args) == [0, 1]
    assert await RegistrySweeper(rs_redis, opts, services=["orders"]).run_once() == {"orders": 0}
    assert await RegistrySweeper(rs_redis, opts).run_once() == {"billing": 1, "orders": 0}
    assert await discovery.services() == ["orders"]


async def test_scripts_reload_after_script_flush(rs_server: RedisServer) -> None:
    redis = aioredis.Redis.from_url(rs_server.url)
    try:
        opts = fast_registry("ns")
        registry, discovery = ServiceRegistry(redis, opts), ServiceDiscovery(redis, opts)
        await registry.register(inst("a"))
        await registry.register(inst("b", service="billing"))
        await wait_until(lambda: gone(discovery, "orders"), 5, "a to expire")
        await wait_until(lambda: gone(discovery, "billing"), 5, "b to expire")
        await redis.script_flush()  # as after a server restart: the pipelined sweep reloads
        assert await RegistrySweeper(redis, opts).run_once() == {"billing": 1, "orders": 1}
        await redis.script_flush()
        assert await discovery.instances("orders") == []
        assert await redis.keys("*") == []
    finally:
        await redis.aclose()
