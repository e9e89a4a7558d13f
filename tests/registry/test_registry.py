"""ServiceRegistry against a real server: events, key layout, expiry, heartbeats, Registration."""

from __future__ import annotations

import asyncio
import math

import pytest
import redis.asyncio as aioredis

from redis_streaming.registry import (
    RegistryKeys,
    RegistrySweeper,
    ServiceDiscovery,
    ServiceEventType,
    ServiceRegistry,
)
from tests.helpers import fast_registry, server_ms, wait_until
from tests.registry.support import (
    events_until_quiet,
    gone,
    inst,
    keys_of,
    next_event,
    summary,
)


@pytest.mark.cluster
async def test_register_update_deregister_publish_events_and_leave_no_keys(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    opts = fast_registry(rs_namespace, ttl_s=30)
    registry, discovery = ServiceRegistry(rs_redis, opts), ServiceDiscovery(rs_redis, opts)
    keys = RegistryKeys(rs_namespace)
    a = inst("a", metadata={"region": "eu"})
    async with discovery.watch("orders") as watch:
        assert await registry.register(a) is True
        event = await next_event(watch)
        assert (event.type, event.service, event.instance_id, event.instance) == (
            ServiceEventType.ADDED, "orders", "a", a,
        )  # fmt: skip
        assert event.timestamp_ms > 0
        assert await keys_of(rs_redis, rs_namespace) == sorted(
            k.encode() for k in (keys.names, keys.instances("orders"), keys.instance("orders", "a"))
        )
        assert await rs_redis.smembers(keys.names) == {b"orders"}

        assert await registry.register(a) is False  # identical: renewed, no event
        assert await registry.register(a.replace(weight=5)) is False  # replaced: UPDATED
        event = await next_event(watch)
        assert (event.type, event.instance) == (ServiceEventType.UPDATED, a.replace(weight=5))

        updated = await registry.update(a, metadata={"region": "us"}, healthy=False)
        assert updated == a.replace(weight=5, metadata={"region": "us"}, healthy=False)
        event = await next_event(watch)
        assert (event.type, event.instance) == (ServiceEventType.UPDATED, updated)
        assert await registry.update(a, healthy=False) == updated  # no change: no event
        assert await registry.update(inst("nobody"), healthy=False) is None

        assert await registry.deregister(a) is True
        event = await next_event(watch)
        assert (event.type, event.instance_id, event.instance) == (
            ServiceEventType.REMOVED, "a", updated,
        )  # fmt: skip
        assert await registry.deregister(a) is False
        assert await events_until_quiet(watch, 0.3) == []  # nothing else was published
    assert await keys_of(rs_redis, rs_namespace) == []
    assert await discovery.services() == []


async def test_expiry_uses_server_time_and_heartbeat_reregisters(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    opts = fast_registry(rs_namespace, ttl_s=2)
    registry, discovery = ServiceRegistry(rs_redis, opts), ServiceDiscovery(rs_redis, opts)
    keys = RegistryKeys(rs_namespace)
    a = inst("a")
    await registry.register(a)
    first = await rs_redis.zscore(keys.instances("orders"), "a")
    now_ms = await server_ms(rs_redis)
    assert first is not None
    assert 0 < first - now_ms <= opts.ttl_ms
    assert await rs_redis.pttl(keys.instance("orders", "a")) > 0  # safety net, > ttl

    async def clock_moved() -> bool:  # so a heartbeat now sets a later expiry
        return await server_ms(rs_redis) > now_ms

    await wait_until(clock_moved, 5, "the server's clock to move on")
    beat = await registry.heartbeat(a)
    assert not beat.reregistered
    assert beat.expires_at_ms == await rs_redis.zscore(keys.instances("orders"), "a") > first

    async with discovery.watch("orders", initial=True) as watch:
        assert summary([await next_event(watch)]) == [("ADDED", "a")]
        # Expired but not swept yet: invisible to discovery, still in Redis.
        await wait_until(lambda: gone(discovery), 5, "instance to expire")
        assert await rs_redis.zscore(keys.instances("orders"), "a") is not None
        beat = await registry.heartbeat(a)
        assert beat.reregistered
        assert await discovery.instances("orders") == [a]
        # The watch never saw it go (no sweeper ran), so the ADDED changes nothing it reported.
        assert await events_until_quiet(watch, 0.3) == []

        await registry.deregister(a)
        assert summary([await next_event(watch)]) == [("REMOVED", "a")]
        assert (await registry.heartbeat(a)).reregistered  # deregistered: registered again
        assert summary([await next_event(watch)]) == [("ADDED", "a")]


async def test_persistent_instances_never_expire(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    opts = fast_registry(rs_namespace)
    registry, discovery = ServiceRegistry(rs_redis, opts), ServiceDiscovery(rs_redis, opts)
    keys = RegistryKeys(rs_namespace)
    db = inst("db-1", port=5432, service="db", protocol="tcp", ephemeral=False)
    await registry.register(db)
    assert await rs_redis.zscore(keys.instances("db"), "db-1") == math.inf
    assert await rs_redis.pttl(keys.instance("db", "db-1")) == -1
    assert (await registry.heartbeat(db)).expires_at_ms is None
    await asyncio.sleep(opts.ttl_s + 0.2)  # past the TTL: a window in which it may not expire
    assert await RegistrySweeper(rs_redis, opts).run_once() == {"db": 0}
    assert await discovery.instances("db") == [db]
    assert await discovery.services() == ["db"]
    assert await registry.deregister(db)
    assert await rs_redis.keys(f"{rs_namespace}:*") == []


async def test_registration_heartbeats_until_closed(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    opts = fast_registry(rs_namespace)
    registry, discovery = ServiceRegistry(rs_redis, opts), ServiceDiscovery(rs_redis, opts)
    a = inst("a", metadata={"v": "1"})
    async with discovery.watch("orders") as watch:
        async with registry.registration(a) as registration:
            assert summary([await next_event(watch)]) == [("ADDED", "a")]
            await asyncio.sleep(opts.ttl_s * 2)  # outlives the TTL thanks to heartbeats
            assert await discovery.instances("orders") == [a]
            assert registration.heartbeats >= 3
            assert await events_until_quiet(watch, 0.1) == []  # heartbeats publish nothing

            assert (await registration.update(metadata={"v": "2"})).metadata == {"v": "2"}
            assert summary([await next_event(watch)]) == [("UPDATED", "a")]
            # Someone removes it: the next heartbeat puts it back, with the latest data.
            await registry.deregister(a)
            assert summary([await next_event(watch)]) == [("REMOVED", "a")]
            event = await next_event(watch)
            assert (event.type, event.instance) == (ServiceEventType.ADDED, registration.instance)
            assert registration.instance.metadata == {"v": "2"}
            await wait_until(lambda: registration.reregistrations == 1, 2, "the count")
        assert not registration.running
        assert summary([await next_event(watch)]) == [("REMOVED", "a")]
    assert await discovery.instances("orders") == []
    assert await rs_redis.keys(f"{rs_namespace}:*") == []
