"""Multi-process consumer-group tests: rebalancing, SIGKILL takeover, graceful leave."""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import time
from collections import defaultdict

import pytest
import redis.asyncio as aioredis

from redis_streaming import Keys, MQOptions, Producer, ProducerRecord, TopicStore
from tests.helpers import wait_until
from tests.mq.procs import Record, parse, spawn

pytestmark = pytest.mark.slow

TTL_S, INTERVAL_S = 3.0, 0.5


def options(namespace: str) -> MQOptions:
    return MQOptions(
        namespace=namespace, lease_ttl_s=TTL_S, rebalance_interval_s=INTERVAL_S, block_ms=300
    )


async def owners(redis: aioredis.Redis, keys: Keys, topic: str, group: str, n: int) -> list[str]:
    values = [await redis.get(keys.lease(topic, p, group)) for p in range(n)]
    return [v.decode() if v else "" for v in values]


def shares(owner_list: list[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for o in owner_list:
        counts[o] += 1
    return dict(counts)


def no_overlap(records: list[Record]) -> None:
    """No partition was worked on by two consumers at the same moment."""
    by_partition: dict[int, list[Record]] = defaultdict(list)
    for r in records:
        by_partition[r.partition].append(r)
    for p, recs in by_partition.items():
        recs.sort(key=lambda r: r.start)
        for a, b in itertools.pairwise(recs):
            if a.consumer != b.consumer:
                assert b.start >= a.end, f"partition {p}: {a} and {b} overlap"


def stop_all(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.stdout:
            p.stdout.close()


async def test_fair_rebalance_join_and_leave(
    rs_redis: aioredis.Redis, rs_namespace: str, rs_server_url: str
) -> None:
    opts = options(rs_namespace)
    keys = Keys(rs_namespace)
    await TopicStore(rs_redis, opts).create("orders", 12)
    record = f"{rs_namespace}:record"
    producer = Producer(rs_redis, opts)
    procs: list[subprocess.Popen[str]] = []
    sending = True

    async def produce() -> None:
        n = 0
        while sending:
            await producer.send_many(
                "orders", [ProducerRecord(n + i, key=f"k{(n + i) % 50}") for i in range(20)]
            )
            n += 20
            await asyncio.sleep(0.02)

    feeder = asyncio.create_task(produce())
    try:
        for i in range(3):
            procs.append(spawn(rs_server_url, opts, "orders", "g", f"c{i}", record, 2))
        joined = time.monotonic()

        async def balanced(expect: dict[str, int]) -> bool:
            return shares(await owners(rs_redis, keys, "orders", "g", 12)) == expect

        await wait_until(lambda: balanced({"c0": 4, "c1": 4, "c2": 4}), 10, "3 x 4")
        assert time.monotonic() - joined <= 2 * INTERVAL_S + 1.0  # + process start-up slack

        procs.append(spawn(rs_server_url, opts, "orders", "g", "c3", record, 2))
        took = await wait_until(lambda: balanced({"c0": 3, "c1": 3, "c2": 3, "c3": 3}), 10, "4 x 3")
        assert took <= 2 * INTERVAL_S + 0.5

        procs[0].send_signal(signal.SIGTERM)  # graceful leave: its partitions are taken over
        assert procs[0].wait(10) == 0
        await wait_until(lambda: balanced({"c1": 4, "c2": 4, "c3": 4}), 10, "3 x 4 after leave")
    finally:
        sending = False
        await feeder
        stop_all(procs)
    records = parse(await rs_redis.lrange(record, 0, -1))
    assert {r.consumer for r in records} == {"c0", "c1", "c2", "c3"}
    no_overlap(records)


@pytest.mark.cluster
async def test_kill_9_loses_nothing_and_keeps_key_order(
    rs_redis: aioredis.Redis, rs_namespace: str, rs_url: str
) -> None:
    opts = options(rs_namespace)
    keys = Keys(rs_namespace)
    await TopicStore(rs_redis, opts).create("orders", 12)
    record = f"{rs_namespace}:record"
    procs = [spawn(rs_url, opts, "orders", "g", f"c{i}", record, 0) for i in range(3)]
    try:
        await wait_until(
            lambda: _all_owned(rs_redis, keys, {"c0", "c1", "c2"}), 10, "all three own"
        )
        producer = Producer(rs_redis, opts)
        total = 20_000
        messages = [ProducerRecord(n, key=f"key-{n % 300}") for n in range(total)]
        await producer.send_many("orders", messages[: total // 2])
        await wait_until(lambda: _count(rs_redis, record, 3_000), 30, "3,000 handled")
        victim_parts = [
            p for p, o in enumerate(await owners(rs_redis, keys, "orders", "g", 12)) if o == "c0"
        ]
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        killed_at = time.time()
        await producer.send_many("orders", messages[total // 2 :])

        async def all_handled() -> bool:
            return len({r.n for r in parse(await rs_redis.lrange(record, 0, -1))}) == total

        await wait_until(all_handled, 60, "every message handled")

        async def nothing_pending() -> bool:
            for p in range(12):
                if (await rs_redis.xpending(keys.stream("orders", p), "g"))["pending"]:
                    return False
            return True

        await wait_until(nothing_pending, 10, "pending 0")
    finally:
        stop_all(procs)
    records = parse(await rs_redis.lrange(record, 0, -1))
    first: dict[int, Record] = {}
    for r in records:
        first.setdefault(r.n, r)
    assert set(first) == set(range(total))
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        if first[r.n] is r:
            per_key[r.key].append(r.n)
    for key, ns in per_key.items():
        assert ns == sorted(ns), f"first deliveries of {key} out of order"
    for p in victim_parts:
        resumed = min(r.start for r in records if r.partition == p and r.consumer != "c0")
        assert resumed - killed_at <= TTL_S + 2 * INTERVAL_S + 0.5, f"partition {p}"


async def _all_owned(redis: aioredis.Redis, keys: Keys, expect: set[str]) -> bool:
    owner_list = await owners(redis, keys, "orders", "g", 12)
    return "" not in owner_list and set(owner_list) == expect


async def _count(redis: aioredis.Redis, key: str, n: int) -> bool:
    return int(await redis.llen(key)) >= n
