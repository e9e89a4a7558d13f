import asyncio

import pytest
import redis.asyncio as aioredis

from redis_streaming import (
    ConfigurationError,
    Consumer,
    Keys,
    Message,
    MQOptions,
    Producer,
    RedisUnavailable,
)
from redis_streaming.mq.admin import Admin
from redis_streaming.mq.maintenance.housekeeper import Housekeeper
from redis_streaming.mq.topics import TopicStore
from redis_streaming.testing import RedisServer
from tests.helpers import fast_mq, server_ms, wait_until


async def add_old(redis: aioredis.Redis, key: str, count: int, age_ms: int) -> list[str]:
    """Append ``count`` entries whose ids say they were written ``age_ms`` ago (server clock)."""
    ms = await server_ms(redis) - age_ms
    pipe = redis.pipeline(transaction=True)  # atomic: a concurrent trim sees all or nothing
    ids = [f"{ms}-{n}" for n in range(count)]
    for eid in ids:
        pipe.xadd(key, {"payload": eid, "content_type": "text/plain"}, id=eid)
    await pipe.execute()
    return ids


async def read(redis: aioredis.Redis, key: str, group: str, count: int, ack: int) -> None:
    """Group ``group`` reads ``count`` new entries and acknowledges the first ``ack`` of them."""
    reply = await redis.xreadgroup(group, "c1", {key: ">"}, count=count)
    ids = [eid for _, entries in reply for eid, _ in entries]
    assert len(ids) == count
    if ack:
        await redis.xack(key, group, *ids[:ack])


async def ids_of(redis: aioredis.Redis, key: str) -> list[str]:
    return [eid.decode() for eid, _ in await redis.xrange(key)]


@pytest.mark.cluster
async def test_age_retention_keeps_what_a_lagging_group_has_not_read(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    opts = fast_mq(rs_namespace, dlq={"max_age_ms": 30_000})
    keys = Keys(rs_namespace)
    stream, dlq = keys.stream("orders", 0), keys.dlq("orders")
    await TopicStore(rs_redis, opts).create("orders", 1)
    old = await add_old(rs_redis, stream, 300, age_ms=120_000)
    await rs_redis.xgroup_create(stream, "slow", id="0")
    done = asyncio.Event()
    seen: list[str] = []

    async def handle(m: Message) -> None:
        seen.append(m.id)
        if len(seen) == 310:
            done.set()

    consumer = Consumer(rs_redis, opts, consumer_id="fast-1")
    consumer.subscribe("orders", handle, group="fast")  # reads and acks everything
    async with consumer:
        sent = await Producer(rs_redis, opts).send_many("orders", range(10))
        await wait_until(done.is_set, 15, "the fast group to handle every entry")
    new = [r.message_id for r in sent]
    await read(rs_redis, stream, "slow", 150, ack=100)  # 50 pending, 160 never read
    old_dead = await add_old(rs_redis, dlq, 5, age_ms=120_000)
    await rs_redis.xadd(dlq, {"payload": "recent"})

    await Admin(rs_redis, opts).set_retention("orders", max_age_ms=30_000)
    housekeeper = Housekeeper(rs_redis, opts, approximate=False)
    assert await housekeeper.run_once() == {"orders": 100 + 5}
    # the slow group's pending entries (old[100:150]) and unread ones are all there
    assert await ids_of(rs_redis, stream) == old[100:] + new
    assert await rs_redis.xlen(dlq) == 1

    await read(rs_redis, stream, "slow", 160, ack=160)
    await rs_redis.xack(stream, "slow", *old[100:150])
    assert await housekeeper.run_once() == {"orders": 200}
    assert await ids_of(rs_redis, stream) == new  # younger than 30 s: kept
    assert old_dead[0] not in await ids_of(rs_redis, dlq)
    assert housekeeper.trimmed == 305
    info = await Admin(rs_redis, opts).describe_topic("orders")
    assert [(g.name, g.lag, g.pending) for g in info.partitions[0].groups] == [
        ("fast", 0, 0),
        ("slow", 0, 0),
    ]


async def test_approximate_trimming_removes_whole_nodes_below_the_floor(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    stream = Keys(rs_namespace).stream("t", 0)
    await TopicStore(rs_redis, fast_options).create("t", 1, retention_max_age_ms=10_000)
    old = await add_old(rs_redis, stream, 2000, age_ms=60_000)
    await rs_redis.xgroup_create(stream, "g", id="0")
    await read(rs_redis, stream, "g", 1000, ack=1000)
    trimmed = (await Housekeeper(rs_redis, fast_options).run_once())["t"]
    node = int((await rs_redis.config_get("stream-node-max-entries"))["stream-node-max-entries"])
    assert 1000 - node <= trimmed <= 1000
    left = await ids_of(rs_redis, stream)
    assert left == old[len(old) - len(left) :]
    assert set(old[1000:]) <= set(left)  # nothing the group has not read is gone


async def test_max_len_trimming_stops_at_the_floor(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    keys = Keys(rs_namespace)
    admin = Admin(rs_redis, fast_options)
    await admin.create_topic("t", 2)
    producer = Producer(rs_redis, fast_options)
    sent = await producer.send_many("t", [{"n": n} for n in range(300)])
    ids = [r.message_id for r in sent if r.partition == 0]
    await rs_redis.xgroup_create(keys.stream("t", 0), "g", id="0")
    await read(rs_redis, keys.stream("t", 0), "g", 100, ack=100)
    await admin.set_retention("t", max_len=20)  # after sending: no trimming on write
    housekeeper = Housekeeper(rs_redis, fast_options, approximate=False)
    # partition 0: the cut at 20 entries would cross the group's position, so it stops there;
    # partition 1: group g has no position there yet (it would read it all): untouched
    assert await housekeeper.run_once() == {"t": 99}
    assert await ids_of(rs_redis, keys.stream("t", 0)) == ids[99:]
    assert await rs_redis.xlen(keys.stream("t", 1)) == 150
    await read(rs_redis, keys.stream("t", 0), "g", 30, ack=30)
    await rs_redis.xgroup_create(keys.stream("t", 1), "g", id="$")
    assert await housekeeper.run_once() == {"t": 30 + 130}
    assert await ids_of(rs_redis, keys.stream("t", 0)) == ids[129:]  # floor: 21 entries left
    assert await rs_redis.xlen(keys.stream("t", 1)) == 20
    await read(rs_redis, keys.stream("t", 0), "g", 1, ack=1)
    assert await housekeeper.run_once() == {"t": 1}
    assert await ids_of(rs_redis, keys.stream("t", 0)) == ids[130:]  # the last 20
    assert await housekeeper.run_once() == {"t": 0}


async def test_streams_without_groups_follow_retention_alone(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    keys = Keys(rs_namespace)
    await TopicStore(rs_redis, fast_options).create("t", 1, retention_max_len=10)
    await TopicStore(rs_redis, fast_options).create("quiet", 1)
    await add_old(rs_redis, keys.stream("t", 0), 50, age_ms=0)
    await add_old(rs_redis, keys.stream("quiet", 0), 50, age_ms=0)
    result = await Housekeeper(rs_redis, fast_options, approximate=False).run_once()
    assert result == {"quiet": 0, "t": 40}
    only = await Housekeeper(rs_redis, fast_options, topics=["quiet"]).run_once()
    assert only == {"quiet": 0}


async def test_dlq_retention_by_length(rs_redis: aioredis.Redis, rs_namespace: str) -> None:
    opts = fast_mq(rs_namespace, dlq={"max_len": 10})
    dlq = Keys(rs_namespace).dlq("t")
    await TopicStore(rs_redis, opts).create("t", 1)
    ids = await add_old(rs_redis, dlq, 50, age_ms=0)
    assert await Housekeeper(rs_redis, opts, approximate=False).run_once() == {"t": 40}
    assert await ids_of(rs_redis, dlq) == ids[40:]
    off = fast_mq(rs_namespace, dlq={"max_len": 0})
    assert await Housekeeper(rs_redis, off, approximate=False).run_once() == {"t": 0}


async def test_redelivery_streams_are_trimmed_to_their_group_floor(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    keys = Keys(rs_namespace)
    # no retention: only redelivery is trimmed
    await TopicStore(rs_redis, fast_options).create("t", 1)
    await rs_redis.xgroup_create(keys.stream("t", 0), "g", id="0", mkstream=True)
    await rs_redis.xgroup_create(keys.stream("t", 0), "h", id="0")
    mine, theirs = keys.redeliver("t", 0, "g"), keys.redeliver("t", 0, "h")
    ids = await add_old(rs_redis, mine, 10, age_ms=0)
    await add_old(rs_redis, theirs, 10, age_ms=0)  # group h has no position there yet
    await rs_redis.xgroup_create(mine, "g", id="0")
    await read(rs_redis, mine, "g", 6, ack=3)
    result = await Housekeeper(rs_redis, fast_options, approximate=False).run_once()
    assert result == {"t": 3}
    assert await ids_of(rs_redis, mine) == ids[3:]
    assert await rs_redis.xlen(theirs) == 10


async def test_background_loop_survives_an_outage(rs_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(rs_server.url, socket_connect_timeout=1, socket_timeout=2)
    opts = fast_mq("hk")
    keys = Keys("hk")

    async def seed() -> None:
        await TopicStore(client, opts).create("t", 1, retention_max_len=5)
        await add_old(client, keys.stream("t", 0), 20, age_ms=0)

    housekeeper = Housekeeper(client, opts, interval_s=0.05, approximate=False)
    async with client:
        await seed()
        async with housekeeper:
            assert housekeeper.running
            await wait_until(lambda: housekeeper.trimmed == 15, 10, "the first trim")
            rs_server.stop()
            await wait_until(lambda: housekeeper.last_error is not None, 10, "a failed pass")
            with pytest.raises(RedisUnavailable):
                await housekeeper.run_once()
            assert housekeeper.running
            rs_server.start()
            await seed()
            await wait_until(lambda: housekeeper.trimmed == 30, 15, "trimming after the outage")
            assert housekeeper.last_error is None
    assert not housekeeper.running
    await housekeeper.stop()  # idempotent


async def test_interval_must_be_positive(rs_redis: aioredis.Redis) -> None:
    with pytest.raises(ConfigurationError, match="interval_s"):
        Housekeeper(rs_redis, interval_s=0)
