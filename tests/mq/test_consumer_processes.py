"""Multi-process consumer-group tests: rebalancing, SIGKILL takeover, graceful leave, a restart
with the same id, a frozen process.

Bounds on time are the promises of docs/concepts.md, with 0.5 s of slack for scheduling on a
busy machine (1.0 s where a process starts up in the measured span)."""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import time
from collections import defaultdict

import pytest
import redis.asyncio as aioredis

from redis_streaming import Keys, MQOptions, Producer, ProducerRecord
from redis_streaming.mq.topics import TopicStore
from tests.helpers import FAST, fast_mq, wait_until
from tests.mq.procs import Record, blocked_reads, parse, spawn

pytestmark = pytest.mark.slow

TTL_S, INTERVAL_S = FAST["mq"]["lease_ttl_s"], FAST["mq"]["rebalance_interval_s"]


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


def stop_all(procs: list[subprocess.Popen[str]], sig: int = signal.SIGTERM) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(sig)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.stdout:
            p.stdout.close()


async def test_fair_rebalance_join_and_leave(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions, rs_server_url: str
) -> None:
    keys = Keys(rs_namespace)
    await TopicStore(rs_redis, fast_options).create("orders", 12)
    record = f"{rs_namespace}:record"
    producer = Producer(rs_redis, fast_options)
    procs: list[subprocess.Popen[str]] = []
    sending = True

    async def produce() -> None:
        n = 0
        while sending:
            await producer.send_many(
                "orders", [ProducerRecord(n + i, key=f"k{(n + i) % 50}") for i in range(20)]
            )
            n += 20
            await asyncio.sleep(0.02)  # paces the feed (not a synchronisation)

    feeder = asyncio.create_task(produce())
    try:
        for i in range(3):
            procs.append(spawn(rs_server_url, fast_options, "orders", "g", f"c{i}", record, 2))
        joined = time.monotonic()

        async def balanced(expect: dict[str, int]) -> bool:
            return shares(await owners(rs_redis, keys, "orders", "g", 12)) == expect

        await wait_until(lambda: balanced({"c0": 4, "c1": 4, "c2": 4}), 10, "3 x 4")
        assert time.monotonic() - joined <= 2 * INTERVAL_S + 1.0  # + process start-up slack

        procs.append(spawn(rs_server_url, fast_options, "orders", "g", "c3", record, 2))
        took = await wait_until(lambda: balanced({"c0": 3, "c1": 3, "c2": 3, "c3": 3}), 10, "4 x 3")
        assert took <= 2 * INTERVAL_S + 0.5

        leaving = [
            p for p, o in enumerate(await owners(rs_redis, keys, "orders", "g", 12)) if o == "c0"
        ]
        procs[0].send_signal(signal.SIGTERM)  # graceful leave: its partitions are taken over
        assert procs[0].wait(10) == 0  # it released its leases and left the group before exiting

        async def taken_over() -> bool:
            now = await owners(rs_redis, keys, "orders", "g", 12)
            return all(now[p] not in ("", "c0") for p in leaving)

        # its partitions at the others' next round; partitions that move between the others
        # are drained and released at one round and taken at the next
        took = await wait_until(taken_over, 10, "c0's partitions taken over")
        assert took <= INTERVAL_S + 0.5
        took = await wait_until(lambda: balanced({"c1": 4, "c2": 4, "c3": 4}), 10, "3 x 4")
        assert took <= 2 * INTERVAL_S + 0.5
    finally:
        sending = False
        await feeder
        stop_all(procs)
    records = parse(await rs_redis.lrange(record, 0, -1))
    assert {r.consumer for r in records} == {"c0", "c1", "c2", "c3"}
    no_overlap(records)


@pytest.mark.cluster
async def test_kill_9_loses_nothing_and_keeps_key_order(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions, rs_url: str
) -> None:
    keys = Keys(rs_namespace)
    await TopicStore(rs_redis, fast_options).create("orders", 12)
    record = f"{rs_namespace}:record"
    procs = [spawn(rs_url, fast_options, "orders", "g", f"c{i}", record, 0) for i in range(3)]
    try:
        await wait_until(
            lambda: _all_owned(rs_redis, keys, {"c0", "c1", "c2"}), 10, "all three own"
        )
        producer = Producer(rs_redis, fast_options)
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
    for p in victim_parts:  # owned again within the lease TTL plus one rebalance interval
        resumed = min(r.start for r in records if r.partition == p and r.consumer != "c0")
        assert resumed - killed_at <= TTL_S + INTERVAL_S + 0.5, f"partition {p}"


async def test_a_restart_with_the_same_id_takes_its_partitions_back_at_once(
    rs_redis: aioredis.Redis, rs_namespace: str, rs_server_url: str
) -> None:
    """Static membership: a consumer killed with SIGKILL and started again with the same id
    takes its leases back at its first round, long before they would expire (TTL 10 s here),
    and handles what its first life left pending; the other member takes none of them."""
    ttl_s = 10.0
    opts = fast_mq(rs_namespace, lease_ttl_s=ttl_s)
    keys = Keys(rs_namespace)
    await TopicStore(rs_redis, opts).create("orders", 4)
    record = f"{rs_namespace}:record"
    procs = [spawn(rs_server_url, opts, "orders", "g", f"c{i}", record, 0) for i in range(2)]
    producer = Producer(rs_redis, opts)
    try:

        async def owned_by(expect: list[str]) -> bool:
            return await owners(rs_redis, keys, "orders", "g", 4) == expect

        await wait_until(lambda: owned_by(["c0", "c1", "c0", "c1"]), 10, "two each")
        stop_all(procs[:1], signal.SIGKILL)
        killed_at = time.time()
        # sent while c0 is down: its partitions' messages wait for it
        await producer.send_many("orders", [ProducerRecord(n, partition=n % 4) for n in range(8)])
        procs[0] = spawn(rs_server_url, opts, "orders", "g", "c0", record, 0)

        async def all_handled() -> bool:
            return len(parse(await rs_redis.lrange(record, 0, -1))) >= 8

        took = await wait_until(all_handled, ttl_s, "every message handled")
        assert took <= 2 * INTERVAL_S + 1.0  # at its first rounds, not after the TTL
        assert time.time() - killed_at < ttl_s / 2
    finally:
        stop_all(procs)
    records = parse(await rs_redis.lrange(record, 0, -1))
    assert sorted(r.n for r in records) == list(range(8))
    assert {r.n: r.consumer for r in records} == {n: f"c{n % 2}" for n in range(8)}


async def test_a_frozen_consumer_starts_nothing_after_its_lease_deadline(
    rs_redis: aioredis.Redis, rs_namespace: str, rs_server_url: str
) -> None:
    """A consumer process frozen (SIGSTOP: a VM pause, a swapped-out process) for longer than
    the lease TTL, while its read was blocking: the server hands that read a message, the other
    member takes the partition over (with that message, pending under the frozen one's name).
    When the frozen consumer wakes up, its read returns the message, and its worker does not
    start it: the local lease deadline has passed, even though its coordinator has not yet had
    a round trip to notice the lost lease. Every message is handled once, never by two
    consumers at the same moment."""
    opts = fast_mq(rs_namespace, block_ms=1400)  # below TTL / 2
    keys = Keys(rs_namespace)
    await TopicStore(rs_redis, opts).create("orders", 2)
    record = f"{rs_namespace}:record"
    name = f"{rs_namespace}-c0"
    url = f"{rs_server_url}{'&' if '?' in rs_server_url else '?'}client_name={name}"
    procs = [spawn(url, opts, "orders", "g", "c0", record, 50)]
    procs.append(spawn(rs_server_url, opts, "orders", "g", "c1", record, 50))
    producer = Producer(rs_redis, opts)
    try:

        async def owned_by(expect: list[str]) -> bool:
            return await owners(rs_redis, keys, "orders", "g", 2) == expect

        await wait_until(lambda: owned_by(["c0", "c1"]), 10, "one each")
        await producer.send("orders", 0, partition=0)
        await wait_until(lambda: _count(rs_redis, record, 1), 5, "message 0 handled by c0")

        async def reading() -> bool:  # c0's read after message 0: it has about 1.4 s to go
            return await blocked_reads(rs_redis, name) == 1

        await wait_until(reading, 5, "c0's next read to block")
        procs[0].send_signal(signal.SIGSTOP)
        frozen_at = time.time()
        # The blocked read is served message 1 (the reply waits in the frozen process's
        # socket); c1 reads the rest once it has taken the partition over.
        await producer.send_many("orders", [ProducerRecord(n, partition=0) for n in range(1, 11)])
        await wait_until(lambda: owned_by(["c1", "c1"]), TTL_S + 5, "c1 to take partition 0")
        await wait_until(lambda: _count(rs_redis, record, 11), 10, "c1 to handle 1..10")
        procs[0].send_signal(signal.SIGCONT)
        woken_at = time.time()
        # c0 is back in the group: c1 drains partition 0 and gives it back
        await wait_until(lambda: owned_by(["c0", "c1"]), 10, "c0 to own partition 0 again")
    finally:
        if procs[0].poll() is None:
            procs[0].send_signal(signal.SIGCONT)
        stop_all(procs)
    records = parse(await rs_redis.lrange(record, 0, -1))
    assert woken_at - frozen_at > TTL_S
    assert [(r.consumer, r.n) for r in records if r.start >= frozen_at and r.consumer == "c0"] == []
    assert sorted(r.n for r in records) == list(range(11))
    assert {r.n for r in records if r.consumer == "c1"} == set(range(1, 11))
    no_overlap(records)


async def _all_owned(redis: aioredis.Redis, keys: Keys, expect: set[str]) -> bool:
    owner_list = await owners(redis, keys, "orders", "g", 12)
    return "" not in owner_list and set(owner_list) == expect


async def _count(redis: aioredis.Redis, key: str, n: int) -> bool:
    return int(await redis.llen(key)) >= n
