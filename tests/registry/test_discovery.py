"""ServiceDiscovery against a real server: filters, strategies, watch and reconnects."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
import redis.asyncio as aioredis

from redis_streaming._redis.background import cancel_and_wait
from redis_streaming.errors import InvalidName, RedisUnavailable
from redis_streaming.registry import ServiceDiscovery, ServiceEventType, ServiceRegistry
from redis_streaming.testing import RedisServer
from tests.helpers import fast_registry, wait_until
from tests.registry.support import events_until_quiet, inst, next_event, summary

A = inst("a", 8001, weight=100, metadata={"region": "eu", "status": "up", "zone": "eu-1"})
B = inst("b", 8002, weight=50, metadata={"region": "us", "status": "up", "zone": "us-1"})
C = inst("c", 8003, weight=80, metadata={"region": "eu", "status": "maintenance"})


async def registered(redis: aioredis.Redis, namespace: str, **extra: object) -> ServiceDiscovery:
    opts = fast_registry(
        namespace, **{"ttl_s": 30.0, **extra}
    )  # no heartbeats here: must not expire
    registry = ServiceRegistry(redis, opts)
    for i in (A, B, C):
        await registry.register(i)
    return ServiceDiscovery(redis, opts, rng=random.Random(3))


async def test_metadata_filters(rs_redis: aioredis.Redis, rs_namespace: str) -> None:
    discovery = await registered(rs_redis, rs_namespace)

    async def ids(filters: dict[str, str]) -> list[str]:
        return [i.instance_id for i in await discovery.instances("orders", filters=filters)]

    assert await ids({}) == ["a", "b", "c"]
    assert await ids({"weight:>=": "80"}) == ["a", "c"]
    assert await ids({"region": "eu"}) == ["a", "c"]
    assert await ids({"region:==": "eu"}) == ["a", "c"]
    assert await ids({"status:!=": "maintenance"}) == ["a", "b"]
    assert await ids({"weight:>=": "80", "region": "eu", "status:!=": "maintenance"}) == ["a"]
    assert await ids({"zone:!=": "eu-1"}) == ["b", "c"]  # c has no zone: != keeps it
    assert await ids({"port:<": "8003", "weight:<": "100"}) == ["b"]
    assert await discovery.instances("orders", filters={"weight:>=": "80"}) == [A, C]

    with pytest.raises(ValueError, match="use one of == != > >= < <="):
        await discovery.instances("orders", filters={"weight:=>": "80"})
    with pytest.raises(InvalidName, match="invalid service name 'no such'"):
        await discovery.instances("no such")
    assert await discovery.instances("unknown") == []
    assert await discovery.services() == ["orders"]
    assert await discovery.get("orders", "b") == B
    assert await discovery.get("orders", "z") is None


async def test_healthy_only(rs_redis: aioredis.Redis, rs_namespace: str) -> None:
    discovery = await registered(rs_redis, rs_namespace)
    await ServiceRegistry(rs_redis, discovery.options).update(B, healthy=False)
    assert [i.instance_id for i in await discovery.instances("orders")] == ["a", "c"]
    everyone = await discovery.instances("orders", healthy_only=False)
    assert [(i.instance_id, i.healthy) for i in everyone] == [
        ("a", True), ("b", False), ("c", True),
    ]  # fmt: skip
    picks = {await discovery.choose("orders", "round_robin") for _ in range(6)}
    assert picks == {A, C}


async def test_choose_round_robin_is_even(rs_redis: aioredis.Redis, rs_namespace: str) -> None:
    discovery = await registered(rs_redis, rs_namespace)
    picks = [await discovery.choose("orders") for _ in range(90)]
    assert Counter(p.instance_id for p in picks if p) == {"a": 30, "b": 30, "c": 30}
    only_eu = [await discovery.choose("orders", filters={"region": "eu"}) for _ in range(4)]
    assert [p.instance_id for p in only_eu if p] == ["a", "c", "a", "c"]


async def test_choose_weighted_and_random_over_10000_picks(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    # The list is cached for the test's duration, so 10,000 picks need one Redis read.
    discovery = await registered(rs_redis, rs_namespace, discovery_cache_s=60)
    for strategy, share in [("weighted", {"a": 100, "b": 50, "c": 80}), ("random", None)]:
        picks = [await discovery.choose("orders", strategy) for _ in range(10_000)]
        counts = Counter(p.instance_id for p in picks if p)
        for instance_id in "abc":
            expected = 10_000 * (share[instance_id] / 230 if share else 1 / 3)
            assert abs(counts[instance_id] - expected) <= 0.1 * expected, (strategy, counts)


async def test_choose_consistent_hash(rs_redis: aioredis.Redis, rs_namespace: str) -> None:
    discovery = await registered(rs_redis, rs_namespace, discovery_cache_s=60)
    keys = [f"user-{n}" for n in range(3000)]
    before = {k: await discovery.choose("orders", "consistent_hash", key=k) for k in keys}
    assert before == {k: await discovery.choose("orders", "consistent_hash", key=k) for k in keys}
    d = inst("d", 8004)
    await ServiceRegistry(rs_redis, discovery.options).register(d)
    fresh = ServiceDiscovery(rs_redis, discovery.options)  # another process, after the join
    after = {k: await fresh.choose("orders", "consistent_hash", key=k) for k in keys}
    moved = [k for k in keys if after[k] != before[k]]
    assert all(after[k] == d for k in moved)
    assert 0.1 < len(moved) / len(keys) < 0.4  # about a quarter
    with pytest.raises(ValueError, match="needs a key"):
        await discovery.choose("orders", "consistent_hash")


async def test_choose_with_nothing_to_choose(rs_redis: aioredis.Redis, rs_namespace: str) -> None:
    discovery = await registered(rs_redis, rs_namespace)
    for strategy in ("round_robin", "random", "weighted"):
        assert await discovery.choose("nothing", strategy) is None
        assert await discovery.choose("orders", strategy, filters={"region": "mars"}) is None
    assert await discovery.choose("nothing", "consistent_hash", key="k") is None
    with pytest.raises(ValueError, match="unknown strategy 'fastest'"):
        await discovery.choose("orders", "fastest")


async def test_watch_initial_snapshot_then_changes(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    discovery = await registered(rs_redis, rs_namespace)
    registry = ServiceRegistry(rs_redis, discovery.options)
    async with discovery.watch("orders", initial=True) as watch:
        first = [await next_event(watch) for _ in range(3)]
        assert [(e.type, e.instance) for e in first] == [
            (ServiceEventType.ADDED, i) for i in (A, B, C)
        ]
        await registry.update(C, metadata={"status": "up"})
        await registry.deregister(A)
        assert summary(await events_until_quiet(watch)) == [("UPDATED", "c"), ("REMOVED", "a")]
    # Plain iteration subscribes at the first step; no initial events by default.
    watch = discovery.watch("orders")
    channel = discovery.keys.events("orders")
    try:
        await registry.register(A)  # before the first step: not reported
        step = asyncio.ensure_future(next_event(watch))
        await wait_until(lambda: _subscribers(rs_redis, channel), 5, "the subscription")
        await registry.deregister(B)
        assert summary([await step, *await events_until_quiet(watch, 0.3)]) == [("REMOVED", "b")]
    finally:
        await watch.aclose()
    assert [e async for e in watch] == []  # closed: the iteration ends


async def _subscribers(redis: aioredis.Redis, channel: str) -> bool:
    return dict(await redis.pubsub_numsub(channel)).get(channel.encode(), 0) > 0


async def test_watch_resyncs_after_its_connection_is_killed(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    discovery = await registered(rs_redis, rs_namespace)
    registry = ServiceRegistry(rs_redis, discovery.options)
    async with discovery.watch("orders") as watch:
        await rs_redis.client_kill_filter(_type="pubsub")
        await registry.deregister(B)  # published while the watch may be reconnecting
        await registry.register(inst("d", 8004))
        events = await events_until_quiet(watch)
        # Whether the events arrived or the resync found the changes, each is reported once.
        assert sorted(summary(events)) == [("ADDED", "d"), ("REMOVED", "b")]
        assert watch.reconnects == 1


async def test_watch_survives_a_server_restart(rs_server: RedisServer) -> None:
    redis = aioredis.Redis.from_url(rs_server.url, socket_connect_timeout=1)
    try:
        discovery = await registered(redis, "ns")
        registry = ServiceRegistry(redis, discovery.options)
        async with discovery.watch("orders") as watch:
            seen: list[tuple[str, str]] = []

            async def collect() -> None:
                async for event in watch:
                    seen.append((event.type.value, event.instance_id))

            collector = asyncio.create_task(collect())
            rs_server.stop()
            with pytest.raises(RedisUnavailable, match=f"127.0.0.1:{rs_server.port}"):
                await discovery.instances("orders")
            await wait_until(lambda: watch.last_error is not None, 10, "the watch to notice")
            rs_server.start()  # empty: the instances are gone, as after a crash
            await registry.register(inst("d", 8004))
            expected = [("ADDED", "d"), ("REMOVED", "a"), ("REMOVED", "b"), ("REMOVED", "c")]
            await wait_until(lambda: sorted(seen) == expected, 20, "the restart's changes")
            assert watch.reconnects >= 1
            assert watch.last_error is None
            await cancel_and_wait(collector)
            assert sorted(seen) == expected  # each once
    finally:
        await redis.aclose()


async def test_discovery_cache(rs_redis: aioredis.Redis, rs_namespace: str) -> None:
    opts = fast_registry(rs_namespace, ttl_s=2, discovery_cache_s=60)
    registry, discovery = ServiceRegistry(rs_redis, opts), ServiceDiscovery(rs_redis, opts)
    a, b = inst("a"), inst("b", ephemeral=False)
    await registry.register(a)
    await registry.register(b)
    assert await discovery.instances("orders") == [a, b]
    await registry.update(b, weight=1)
    assert await discovery.instances("orders") == [a, b]  # cached
    assert await discovery.instances("orders", fresh=True) == [a, b.replace(weight=1)]
    # Expired instances leave the cached list on time (estimated server clock), unswept.
    await wait_until(lambda: _cached_ids(discovery, ["b"]), 5, "a to expire")


async def _cached_ids(discovery: ServiceDiscovery, expected: list[str]) -> bool:
    return [i.instance_id for i in await discovery.instances("orders")] == expected
