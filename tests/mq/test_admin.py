import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from redis_streaming import (
    ConfigurationError,
    InvalidName,
    Keys,
    MQOptions,
    PartitionOutOfRange,
    Producer,
    RedisUnavailable,
    TopicNotFound,
)
from redis_streaming.mq import admin as admin_module
from redis_streaming.mq.admin import Admin, GroupInfo, PendingEntry
from redis_streaming.mq.topics import TopicStore
from redis_streaming.testing import RedisServer


async def keys_of(redis: aioredis.Redis, namespace: str) -> set[str]:
    return {k.decode() async for k in redis.scan_iter(match=f"{namespace}:*")}


async def read(redis: aioredis.Redis, key: str, group: str, count: int) -> list[bytes]:
    """Read ``count`` new entries as consumer ``c1`` of ``group``; returns their ids."""
    reply = await redis.xreadgroup(group, "c1", {key: ">"}, count=count)
    return [eid for _, entries in reply for eid, _ in entries]


async def fill(redis: aioredis.Redis, key: str, ids: list[str]) -> None:
    for eid in ids:
        await redis.xadd(key, {"payload": eid}, id=eid)


async def test_create_is_idempotent_and_conflicts_say_how_to_fix(
    rs_redis: aioredis.Redis, rs_options: MQOptions
) -> None:
    admin = Admin(rs_redis, rs_options)
    meta = await admin.create_topic("orders", 3, retention_max_age_ms=60_000)
    assert (meta.partitions, meta.retention_max_age_ms) == (3, 60_000)
    assert await admin.create_topic("orders", 3, retention_max_age_ms=60_000) == meta
    await admin.create_topic("audit", 1)
    assert await admin.list_topics() == ["audit", "orders"]
    with pytest.raises(ConfigurationError, match=r"add_partitions\('orders', 5\)"):
        await admin.create_topic("orders", 5, retention_max_age_ms=60_000)
    with pytest.raises(ConfigurationError, match="partitions can only grow"):
        await admin.create_topic("orders", 2, retention_max_age_ms=60_000)
    with pytest.raises(ConfigurationError, match="set_retention"):
        await admin.create_topic("orders", 3)
    changed = await admin.set_retention("orders", max_len=500)
    assert (changed.retention_max_len, changed.retention_max_age_ms) == (500, 60_000)
    assert await admin.create_topic("orders", 3, retention_max_len=500, retention_max_age_ms=60_000)
    with pytest.raises(TopicNotFound):
        await admin.set_retention("nope", max_len=1)
    assert await keys_of(rs_redis, rs_options.namespace) == {
        f"{rs_options.namespace}:topics",
        Keys(rs_options.namespace).topic("orders"),
        Keys(rs_options.namespace).topic("audit"),
    }


async def test_names_are_validated(rs_redis: aioredis.Redis, rs_options: MQOptions) -> None:
    admin = Admin(rs_redis, rs_options)
    with pytest.raises(InvalidName):
        await admin.describe_topic("bad topic")
    with pytest.raises(InvalidName):
        await admin.delete_topic("a:b")
    await admin.create_topic("t", 1)
    with pytest.raises(InvalidName, match="group"):
        await admin.pending("t", "g{1}")
    with pytest.raises(InvalidName, match="group"):
        await admin.reset_group("t", "g g", "earliest")
    with pytest.raises(TopicNotFound, match=r"Admin\.list_topics") as info:
        await admin.describe_topic("unknown")
    assert "auto_create_topics" not in str(info.value)  # admin never creates topics
    with pytest.raises(PartitionOutOfRange):
        await admin.pending("t", "g", partition=1)


@pytest.mark.cluster
async def test_describe_reports_lag_pending_owner_dlq_and_retries(
    rs_redis: aioredis.Redis, rs_options: MQOptions
) -> None:
    keys = Keys(rs_options.namespace)
    admin = Admin(rs_redis, rs_options)
    await admin.create_topic("orders", 2, retention_max_len=1000)
    producer = Producer(rs_redis, rs_options)
    sent = await producer.send_many("orders", [{"n": n} for n in range(10)])
    p0 = [r.message_id for r in sent if r.partition == 0]
    s0 = keys.stream("orders", 0)
    await rs_redis.xgroup_create(s0, "billing", id="0")
    await rs_redis.xgroup_create(keys.stream("orders", 1), "billing", id="0")
    await rs_redis.xgroup_create(s0, "audit", id="$")
    got = await read(rs_redis, s0, "billing", 4)
    await rs_redis.xack(s0, "billing", *got[:2])
    await rs_redis.set(keys.lease("orders", 0, "billing"), "consumer-a", px=10_000)
    await rs_redis.zadd(keys.retry("orders", 0, "billing"), {"r1": 1, "r2": 2})
    await rs_redis.zadd(keys.retry("orders", 1, "billing"), {"r3": 3})
    await rs_redis.xadd(keys.dlq("orders"), {"payload": "x"})

    info = await admin.describe_topic("orders")
    assert (info.name, info.dlq_length, info.retry_backlog) == ("orders", 1, 3)
    assert (info.retention_max_len, info.retention_max_age_ms) == (1000, 0)
    assert info.created_ms > 0
    part0, part1 = info.partitions
    assert (part0.partition, part0.length, part0.first_id, part0.last_id) == (0, 5, p0[0], p0[-1])
    audit, billing = sorted(part0.groups, key=lambda g: g.name)
    assert billing == GroupInfo("billing", 2, 1, 1, "consumer-a", p0[3], 2)
    assert audit == GroupInfo("audit", 0, 0, 0, None, p0[-1], 0)
    assert part1.length == 5
    assert part1.groups == [GroupInfo("billing", 0, 5, 0, None, "0-0", 1)]
    totals = info.group_totals()
    assert list(totals) == ["audit", "billing"]
    assert (totals["billing"].pending, totals["billing"].lag) == (2, 6)
    assert totals["billing"].retry_backlog == 3

    empty = await admin.create_topic("empty", 2)
    info = await admin.describe_topic(empty.name)
    assert [(p.length, p.first_id, p.last_id, p.groups) for p in info.partitions] == [
        (0, None, None, []),
        (0, None, None, []),
    ]


@pytest.mark.cluster
@pytest.mark.parametrize("walk", [5000, 3])
async def test_lag_is_counted_when_redis_cannot_tell_it(
    rs_redis: aioredis.Redis,
    rs_options: MQOptions,
    monkeypatch: pytest.MonkeyPatch,
    walk: int,
) -> None:
    monkeypatch.setattr(admin_module, "_WALK", walk)  # small: many resumed script calls
    keys = Keys(rs_options.namespace)
    admin = Admin(rs_redis, rs_options)
    await admin.create_topic("t", 1)
    stream = keys.stream("t", 0)
    ids = [f"1000-{n}" for n in range(40)]
    await fill(rs_redis, stream, ids)
    for group, position in (("near-start", 2), ("middle", 20), ("near-end", 37)):
        await rs_redis.xgroup_create(stream, group, id=ids[position])
    await rs_redis.xgroup_create(stream, "all-read", id=ids[-1])
    await rs_redis.xdel(stream, ids[1], ids[30])  # tombstones: XINFO lag becomes nil
    raw = {g["name"].decode(): g["lag"] for g in await rs_redis.xinfo_groups(stream)}
    assert raw["middle"] is None
    info = await admin.describe_topic("t")
    lag = {g.name: g.lag for g in info.partitions[0].groups}
    # entries after the position, minus the deleted ones
    assert lag == {"near-start": 37 - 1, "middle": 19 - 1, "near-end": 2, "all-read": 0}


@pytest.mark.cluster
async def test_add_partitions_grows_only_and_gives_groups_the_new_partitions(
    rs_redis: aioredis.Redis, rs_options: MQOptions
) -> None:
    keys = Keys(rs_options.namespace)
    admin = Admin(rs_redis, rs_options)
    await admin.create_topic("t", 2)
    producer = Producer(rs_redis, rs_options)
    await producer.send("t", "x", partition=1)
    await rs_redis.xgroup_create(keys.stream("t", 0), "late", id="$", mkstream=True)
    await rs_redis.xgroup_create(keys.stream("t", 1), "early", id="0")
    meta = await admin.add_partitions("t", 4)
    assert meta.partitions == 4
    for p in (2, 3):
        groups = await rs_redis.xinfo_groups(keys.stream("t", p))
        assert {(g["name"], g["last-delivered-id"]) for g in groups} == {
            (b"early", b"0-0"),
            (b"late", b"0-0"),
        }
    assert (await producer.send("t", "y", partition=3)).partition == 3  # refreshes at once
    with pytest.raises(ConfigurationError, match="already has 4 partitions; partitions can only"):
        await admin.add_partitions("t", 4)
    with pytest.raises(ConfigurationError, match="can only grow"):
        await admin.add_partitions("t", 3)
    with pytest.raises(ConfigurationError, match="between 1 and 4096"):
        await admin.add_partitions("t", 5000)
    with pytest.raises(TopicNotFound):
        await admin.add_partitions("nope", 3)
    assert not await rs_redis.exists(keys.topic("nope"))


async def test_concurrent_growers_never_shrink(
    rs_redis: aioredis.Redis, rs_options: MQOptions
) -> None:
    admin = Admin(rs_redis, rs_options)
    await admin.create_topic("t", 1)
    counts = [5, 9, 3, 7, 9, 2, 8]
    results = await asyncio.gather(
        *(admin.add_partitions("t", c) for c in counts), return_exceptions=True
    )
    for result in results:
        assert not isinstance(result, BaseException) or isinstance(result, ConfigurationError)
    grown = [r.partitions for r in results if not isinstance(r, BaseException)]
    assert len(grown) == len(set(grown))  # each success raised the count
    assert 9 in grown
    meta = await TopicStore(rs_redis, rs_options).get("t")
    assert meta is not None
    assert meta.partitions == 9


async def populate(redis: aioredis.Redis, keys: Keys, topic: str) -> None:
    """One key of every kind the topic can have, through the real key builders."""
    await TopicStore(redis, MQOptions(namespace=keys.namespace)).create(topic, 2)
    for p in range(2):
        stream = keys.stream(topic, p)
        await redis.xadd(stream, {"payload": "x"})
        await redis.xgroup_create(stream, "g", id="0")
        await redis.xadd(keys.redeliver(topic, p, "g"), {"payload": "r"})
        await redis.zadd(keys.retry(topic, p, "g"), {"e": 1})
        await redis.zadd(keys.delayed(topic, p), {"e": 1})
        await redis.set(keys.lease(topic, p, "g"), "c")
    await redis.zadd(keys.members(topic, "g"), {"c": 1})
    await redis.xadd(keys.dlq(topic), {"payload": "d"})


@pytest.mark.cluster
async def test_delete_topic_removes_every_key_of_the_topic_and_nothing_else(
    rs_redis: aioredis.Redis, rs_options: MQOptions
) -> None:
    ns = rs_options.namespace
    keys = Keys(ns)
    for topic in ("orders", "orders.v2", "order", "orders-x", "xorders"):
        await populate(rs_redis, keys, topic)
    foreign = [f"{ns}:svc:{{orders}}:instances", f"{ns}:svc:{{orders}}:i:a", f"{ns}:note"]
    for key in foreign:
        await rs_redis.set(key, "keep")  # e.g. a service named like the topic
    before = await keys_of(rs_redis, ns)
    mine = {k for k in before if keys.is_topic_key("orders", k)}
    assert len(mine) == 1 + 1 + 1 + 2 * 5  # meta, dlq, members, per partition 5 keys
    assert await Admin(rs_redis, rs_options).delete_topic("orders") == len(mine)
    after = await keys_of(rs_redis, ns)
    assert after == before - mine
    assert set(foreign) <= after
    assert await Admin(rs_redis, rs_options).list_topics() == [
        "order",
        "orders-x",
        "orders.v2",
        "xorders",
    ]
    assert await Admin(rs_redis, rs_options).delete_topic("orders") == 0
    for topic in ("orders.v2", "order"):  # the others still work
        assert (await Admin(rs_redis, rs_options).describe_topic(topic)).partitions[0].length == 1


async def test_pending_lists_both_streams_per_partition(
    rs_redis: aioredis.Redis, rs_options: MQOptions
) -> None:
    keys = Keys(rs_options.namespace)
    admin = Admin(rs_redis, rs_options)
    await admin.create_topic("t", 3)
    for p in range(3):
        await fill(rs_redis, keys.stream("t", p), [f"{100 + p}-{n}" for n in range(3)])
        await rs_redis.xgroup_create(keys.stream("t", p), "g", id="0")
    await fill(rs_redis, keys.redeliver("t", 1, "g"), ["5-0", "6-0"])
    await rs_redis.xgroup_create(keys.redeliver("t", 1, "g"), "g", id="0")
    await read(rs_redis, keys.stream("t", 0), "g", 2)
    await read(rs_redis, keys.stream("t", 1), "g", 1)
    await read(rs_redis, keys.redeliver("t", 1, "g"), "g", 2)
    await rs_redis.xreadgroup("g", "c1", {keys.stream("t", 1): "0"})  # delivered twice now

    entries = await admin.pending("t", "g")
    assert [(e.partition, e.stream, e.id, e.consumer) for e in entries] == [
        (0, "main", "100-0", "c1"),
        (0, "main", "100-1", "c1"),
        (1, "main", "101-0", "c1"),
        (1, "redeliver", "5-0", "c1"),
        (1, "redeliver", "6-0", "c1"),
    ]
    assert entries[2].deliveries == 2
    assert all(e.idle_ms >= 0 for e in entries)

    def ids(entries: list[PendingEntry]) -> list[tuple[int, str, str]]:
        return [(e.partition, e.stream, e.id) for e in entries]  # idle_ms changes

    assert ids(await admin.pending("t", "g", partition=1, count=2)) == ids(entries[2:4])
    assert ids(await admin.pending("t", "g", count=1)) == ids(entries[:1])
    assert await admin.pending("t", "g", partition=2) == []
    assert await admin.pending("t", "nobody") == []
    assert isinstance(entries[0], PendingEntry)


@pytest.mark.cluster
async def test_reset_group_moves_the_position_and_keeps_the_pending_list(
    rs_redis: aioredis.Redis, rs_options: MQOptions
) -> None:
    keys = Keys(rs_options.namespace)
    admin = Admin(rs_redis, rs_options)
    await admin.create_topic("t", 2)
    s0, s1 = keys.stream("t", 0), keys.stream("t", 1)
    ids = ["1000-0", "1000-1", "2000-0", "3000-0", "3000-1"]
    await fill(rs_redis, s0, ids)
    await fill(rs_redis, s1, ["1500-0", "2500-0"])
    await rs_redis.xgroup_create(s0, "g", id="0")  # no position on partition 1 yet
    assert await read(rs_redis, s0, "g", 5) == [i.encode() for i in ids]
    await rs_redis.xack(s0, "g", "1000-0", "1000-1")
    pending_before = await admin.pending("t", "g")
    assert [e.id for e in pending_before] == ["2000-0", "3000-0", "3000-1"]

    async def next_read(key: str) -> list[str]:
        ids = [i.decode() for i in await read(rs_redis, key, "g", 10)]
        if ids:
            await rs_redis.xack(key, "g", *ids)
        return ids

    assert await admin.reset_group("t", "g", "earliest", partition=0) == [0]
    assert [e.id for e in await admin.pending("t", "g")] == [e.id for e in pending_before]
    assert await next_read(s0) == ids  # everything is read again
    assert await admin.reset_group("t", "g", 2000) == [0, 1]  # int: epoch ms
    assert await next_read(s0) == ["2000-0", "3000-0", "3000-1"]
    assert await next_read(s1) == ["2500-0"]  # the group got a position on partition 1
    await admin.reset_group("t", "g", "1000-1")
    assert await next_read(s0) == ["2000-0", "3000-0", "3000-1"]
    await admin.reset_group("t", "g", 0)
    assert await next_read(s1) == ["1500-0", "2500-0"]
    await admin.reset_group("t", "g", "latest")
    assert await next_read(s0) == []
    info = await admin.describe_topic("t")
    assert [g.lag for p in info.partitions for g in p.groups] == [0, 0]
    await admin.reset_group("t", "g", 3000)  # mid-stream: XINFO has no lag, it is counted
    info = await admin.describe_topic("t")
    assert [g.lag for p in info.partitions for g in p.groups] == [2, 0]

    with pytest.raises(ConfigurationError, match="no position on topic 't'"):
        await admin.reset_group("t", "typo", "earliest")
    for key in (s0, s1):
        assert [g["name"] for g in await rs_redis.xinfo_groups(key)] == [b"g"]
    bad: list[Any] = ["yesterday", -1, True, "1-2-3", 1.5]
    for to in bad:
        with pytest.raises(ConfigurationError, match="cannot reset a group"):
            await admin.reset_group("t", "g", to)


async def test_server_down_raises_redis_unavailable(rs_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(rs_server.url, socket_connect_timeout=1)
    try:
        admin = Admin(client, MQOptions(namespace="down"))
        await admin.create_topic("t", 1)
        rs_server.stop()
        calls: list[Callable[[], Awaitable[object]]] = [
            admin.list_topics,
            lambda: admin.describe_topic("t"),
            lambda: admin.delete_topic("t"),
            lambda: admin.add_partitions("t", 2),
            lambda: admin.pending("t", "g"),
            lambda: admin.reset_group("t", "g", "latest"),
        ]
        for call in calls:
            with pytest.raises(RedisUnavailable, match=f"127.0.0.1:{rs_server.port}"):
                await call()
        rs_server.start()
        assert await admin.list_topics() == []  # the restarted server is empty
    finally:
        await client.aclose()
