import asyncio
import time

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from redis_streaming import Consumer, DelayedMover, Keys, Message, MQOptions, Producer
from redis_streaming.mq.topics import TopicStore
from redis_streaming.testing import RedisServer
from tests.helpers import fast_mq, running, wait_until


async def wait_for_len(redis: aioredis.Redis, key: str, n: int, timeout_s: float) -> float:
    """Wait until the stream has n entries; return when (monotonic)."""

    async def long_enough() -> bool:
        return int(await redis.xlen(key)) >= n

    await wait_until(long_enough, timeout_s, f"{key} to reach {n} entries")
    return time.monotonic()


@pytest.mark.cluster
async def test_delayed_message_appears_when_due_and_not_before(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = MQOptions(namespace=rs_namespace, delayed_interval_ms=100)
    await TopicStore(rs_redis, options).create("later", 1)
    producer = Producer(rs_redis, options)
    stream = Keys(rs_namespace).stream("later", 0)
    mover = DelayedMover(rs_redis, options)
    async with mover:
        sent_at = time.monotonic()
        result = await producer.send("later", {"hello": 1}, key="k", delay=0.6)
        assert result.message_id is None
        assert result.due_ms is not None
        await asyncio.sleep(0.4)  # a window in which it may not appear (not a synchronisation)
        assert await rs_redis.xlen(stream) == 0
        seen_at = await wait_for_len(rs_redis, stream, 1, 5)
        assert 0.55 <= seen_at - sent_at <= 0.6 + 0.1 + 0.15  # due + one interval + slack
        [(_, fields)] = await rs_redis.xrange(stream)
        assert fields[b"payload"] == b'{"hello":1}'
        assert fields[b"key"] == b"k"
        assert await rs_redis.zcard(Keys(rs_namespace).delayed("later", 0)) == 0
    assert not mover.running


async def test_two_movers_never_duplicate(rs_redis: aioredis.Redis, rs_namespace: str) -> None:
    options = MQOptions(namespace=rs_namespace, delayed_interval_ms=10, delayed_batch=7)
    await TopicStore(rs_redis, options).create("dup", 4)
    producer = Producer(rs_redis, options)
    for i in range(400):
        await producer.send("dup", i, delay=0.2 + (i % 20) * 0.05)  # due over 1 s: both race
    second = aioredis.Redis.from_url(_url(rs_redis))
    movers = [DelayedMover(rs_redis, options), DelayedMover(second, options, topics=["dup"])]
    keys = Keys(rs_namespace)

    async def all_moved() -> bool:
        return sum([await rs_redis.zcard(keys.delayed("dup", p)) for p in range(4)]) == 0

    async with second, running(*movers):
        await wait_until(all_moved, 10, "the delayed sets to empty")
        # each move is one script; a mover counts it once the script has returned
        await wait_until(lambda: movers[0].moved + movers[1].moved >= 400, 5, "the counts")
        seen = []
        for p in range(4):
            seen += [int(f[b"payload"]) for _, f in await rs_redis.xrange(keys.stream("dup", p))]
        assert sorted(seen) == list(range(400))
        assert movers[0].moved + movers[1].moved == 400
        assert movers[0].moved > 0
        assert movers[1].moved > 0


def _url(redis: aioredis.Redis) -> str:
    kw = redis.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/{kw.get('db', 0)}"


async def test_mover_survives_a_server_restart(rs_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(
        rs_server.url, socket_connect_timeout=1, retry=Retry(ExponentialBackoff(), 3)
    )
    options = MQOptions(namespace="restart", delayed_interval_ms=50)
    mover = DelayedMover(client, options, topics=["r"])
    async with client:
        await TopicStore(client, options).create("r", 1)
        async with mover:
            rs_server.restart()  # script cache and data are gone
            await TopicStore(client, options).create("r", 1)
            await Producer(client, options).send("r", "x", delay=0.05)
            await wait_for_len(client, Keys("restart").stream("r", 0), 1, 10)


@pytest.mark.cluster
async def test_a_consumer_alone_moves_the_delayed_messages_of_the_partitions_it_owns(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    """No DelayedMover runs: the consumer's one mover task moves its owned partitions' due
    messages (and the per-partition retry movers do not)."""
    options = fast_mq(rs_namespace, delayed_interval_ms=100)
    got: list[str] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    consumer = Consumer(rs_redis, options, consumer_id="c1")
    for topic in ("a", "b"):
        await TopicStore(rs_redis, options).create(topic, 4)
        consumer.subscribe(topic, handle, group="g")
    async with consumer:
        subs = consumer.subscriptions
        await wait_until(lambda: all(len(s.owned_partitions) == 4 for s in subs), 5)
        producer = Producer(rs_redis, options)
        for topic in ("a", "b"):
            for p in range(4):
                await producer.send(topic, f"{topic}{p}", partition=p, delay=0.3)
        await wait_until(lambda: len(got) == 8, 10, "eight delayed messages handled")
        assert sorted(got) == [f"{t}{p}" for t in "ab" for p in range(4)]
        assert consumer.delayed_mover is not None
        assert consumer.delayed_mover.moved == 8
    assert not consumer.delayed_mover.running
