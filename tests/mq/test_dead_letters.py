"""Dead letters against a real server: write order, the poison boundary, the cap on write, the
truncated error fields, and replay when the append fails (docs/retries.md "Dead letters")."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from redis_streaming import (
    Consumer,
    DeadLetter,
    DeadLetters,
    Keys,
    Message,
    MQOptions,
    Producer,
    RedisStreamingError,
    RedisUnavailable,
    RetryPolicy,
)
from redis_streaming.mq.topics import TopicStore
from redis_streaming.testing import RedisServer
from tests.helpers import fast_mq, wait_until


async def _pending(redis: aioredis.Redis, stream: str, group: str) -> int:
    return int((await redis.xpending(stream, group))["pending"])


@pytest.mark.cluster
async def test_a_failed_dead_letter_write_leaves_the_entry_pending_then_writes_it_once(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    # max_deliveries high: the entry comes back after each failed write, and stays "rejected"
    options = fast_mq(rs_namespace, max_deliveries=1000)
    await TopicStore(rs_redis, options).create("w", 1)
    keys = Keys(rs_namespace)
    stream, dlq_key = keys.stream("w", 0), keys.dlq("w")
    await rs_redis.set(dlq_key, "not a stream")  # every XADD to it fails: WRONGTYPE
    calls: list[int] = []

    async def handle(m: Message) -> None:
        calls.append(m.attempt)
        raise DeadLetter("customer unknown")

    consumer = Consumer(rs_redis, options)
    sub = consumer.subscribe("w", handle, group="g")
    async with consumer:
        sent = await Producer(rs_redis, options).send("w", "order-7")

        def write_failed() -> bool:
            return "WRONGTYPE" in (sub.last_error or "") or len(calls) >= 2

        await wait_until(write_failed, 10, "the failed dead-letter write")
        assert await _pending(rs_redis, stream, "g") == 1  # not acknowledged
        # the worker claims it again and hands it to the handler again
        await wait_until(lambda: len(calls) >= 2, 10, "the entry handled again")
        assert await _pending(rs_redis, stream, "g") == 1
        assert sub.dead_lettered == 0  # nothing was written

        await rs_redis.delete(dlq_key)

        async def dead_lettered() -> bool:
            return await rs_redis.xlen(dlq_key) == 1 and await _pending(rs_redis, stream, "g") == 0

        await wait_until(dead_lettered, 10, "the dead letter written once the key is fixed")
        handled = len(calls)
    assert len(calls) == handled  # acknowledged: not handled again
    [entry] = await DeadLetters(rs_redis, options).list("w")
    assert (entry.reason, entry.error, entry.payload) == (
        "rejected",
        "customer unknown",
        b"order-7",
    )
    assert entry.origin_id == sent.message_id
    assert sub.dead_lettered == 1  # counts what was written, not the failed writes


@pytest.mark.cluster
async def test_poison_is_more_than_max_deliveries_not_exactly(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = fast_mq(rs_namespace, max_deliveries=3)
    await TopicStore(rs_redis, options).create("p", 1)
    keys = Keys(rs_namespace)
    stream = keys.stream("p", 0)
    producer = Producer(rs_redis, options)
    await producer.send("p", "at the limit")
    await producer.send("p", "over the limit")
    await rs_redis.xgroup_create(stream, "g", id="0", mkstream=True)
    # consumers "crashed" while handling them: two deliveries of the first, three of the second
    [[_, [(at_limit, _), (over, _)]]] = await rs_redis.xreadgroup("g", "dead-1", {stream: ">"})
    await rs_redis.xclaim(stream, "g", "dead-2", 0, [at_limit, over])
    await rs_redis.xclaim(stream, "g", "dead-3", 0, [over])
    handled: list[tuple[str, int]] = []

    async def handle(m: Message) -> None:
        handled.append((m.payload, m.attempt))

    consumer = Consumer(rs_redis, options, consumer_id="survivor")
    sub = consumer.subscribe("p", handle, group="g")
    async with consumer:
        # the takeover claim is the third delivery of one (= max_deliveries) and the fourth
        # of the other (> max_deliveries)
        await wait_until(lambda: sub.dead_lettered + len(handled) == 2, 5, "both outcomes")
    assert handled == [("at the limit", 3)]
    [(_, dead)] = await rs_redis.xrange(keys.dlq("p"))
    assert (dead[b"payload"], dead[b"dlq_reason"]) == (b"over the limit", b"poison")
    assert dead[b"dlq_attempts"] == b"4"
    assert await _pending(rs_redis, stream, "g") == 0


async def test_dead_letters_are_capped_at_about_max_len_on_write(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    max_len, sent = 50, 320
    # MAXLEN ~ drops whole stream nodes only: the stream keeps up to one node more than max_len
    node = int((await rs_redis.config_get("stream-node-max-entries"))["stream-node-max-entries"])
    assert max_len + node < sent  # so the cap must really trim
    options = fast_mq(rs_namespace, dlq={"max_len": max_len})
    await TopicStore(rs_redis, options).create("cap", 1)

    async def reject(m: Message) -> None:
        raise DeadLetter("no")

    consumer = Consumer(rs_redis, options)
    sub = consumer.subscribe("cap", reject, group="g")
    async with consumer:
        await Producer(rs_redis, options).send_many("cap", list(range(sent)))
        await wait_until(lambda: sub.dead_lettered == sent, 30, "every message dead-lettered")
    length = await DeadLetters(rs_redis, options).length("cap")
    assert max_len <= length <= max_len + node, length
    newest = await DeadLetters(rs_redis, options).list("cap", count=1)
    assert newest[0].payload == str(sent - 1).encode()  # trimming drops the oldest


async def test_error_and_traceback_keep_their_tails(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    limit = 300
    options = fast_mq(rs_namespace, dlq={"traceback_max_chars": limit})
    await TopicStore(rs_redis, options).create("long", 1)
    long_message = "HEAD" + "x" * 5000 + "TAIL"

    def deep(n: int) -> None:
        if n == 0:
            raise ValueError("deep")
        deep(n - 1)

    async def handle(m: Message) -> None:
        if m.payload == "long":
            raise ValueError(long_message)
        deep(40)  # a traceback far longer than the limit, with a short message

    consumer = Consumer(rs_redis, options)
    sub = consumer.subscribe(
        "long", handle, group="g", retry=RetryPolicy(non_retryable=(ValueError,))
    )
    async with consumer:
        await Producer(rs_redis, options).send_many("long", ["long", "deep"])
        await wait_until(lambda: sub.dead_lettered == 2, 10)
    entries = {e.decoded(): e for e in await DeadLetters(rs_redis, options).list("long")}
    error = entries["long"].error
    assert error == "..." + long_message[-2000:]  # the last 2,000 characters
    deep_tb = entries["deep"].traceback
    assert entries["deep"].error == "deep"
    assert len(deep_tb) == limit + 3
    assert deep_tb.startswith("...")
    assert deep_tb.endswith("ValueError: deep\n")  # the tail: where it was raised
    assert "Traceback (most recent call last)" not in deep_tb


async def test_traceback_max_chars_zero_keeps_no_traceback(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = fast_mq(rs_namespace, dlq={"traceback_max_chars": 0})
    await TopicStore(rs_redis, options).create("notb", 1)

    async def handle(m: Message) -> None:
        raise KeyError("gone")

    consumer = Consumer(rs_redis, options)
    sub = consumer.subscribe(
        "notb", handle, group="g", retry=RetryPolicy(non_retryable=(KeyError,))
    )
    async with consumer:
        await Producer(rs_redis, options).send("notb", 1)
        await wait_until(lambda: sub.dead_lettered == 1, 10)
    [entry] = await DeadLetters(rs_redis, options).list("notb")
    assert (entry.error_type, entry.error, entry.traceback) == ("KeyError", "'gone'", "")


@pytest.mark.cluster
async def test_replay_whose_append_fails_keeps_the_dead_letter(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("rp", 1)
    keys = Keys(rs_namespace)

    async def reject(m: Message) -> None:
        raise DeadLetter("not now")

    consumer = Consumer(rs_redis, fast_options)
    subs = [consumer.subscribe("rp", reject, group=g) for g in ("audit", "billing")]
    async with consumer:
        await Producer(rs_redis, fast_options).send("rp", "order-1")
        await wait_until(lambda: all(s.dead_lettered == 1 for s in subs), 10)
    dlq = DeadLetters(rs_redis, fast_options)
    billing_letter = (await dlq.list("rp", group="billing"))[0]
    audit, billing = keys.redeliver("rp", 0, "audit"), keys.redeliver("rp", 0, "billing")
    await rs_redis.delete(billing)
    await rs_redis.set(billing, "not a stream")  # billing's append fails: WRONGTYPE

    with pytest.raises(RedisStreamingError, match="WRONGTYPE") as failed:
        await dlq.replay("rp")
    message = str(failed.value)
    assert billing in message
    assert "1 were replayed" in message
    assert "must be a stream or absent" in message  # what to do about it
    # billing's dead letter is still there; audit's was appended once and removed
    assert await dlq.list("rp") == [billing_letter]
    assert await rs_redis.xlen(audit) == 1

    await rs_redis.delete(billing)
    assert await dlq.replay("rp") == 1
    assert await dlq.length("rp") == 0
    assert await rs_redis.xlen(billing) == 1
    assert await rs_redis.xlen(audit) == 1  # not replayed a second time


async def test_a_lost_connection_names_what_the_call_was_doing(rs_server: RedisServer) -> None:
    """Writes are not reported as reads: each call says what it was doing when Redis failed."""
    client = aioredis.Redis.from_url(rs_server.url, socket_connect_timeout=1)
    try:
        dlq = DeadLetters(client, fast_mq("down"))
        assert await dlq.length("d") == 0
        rs_server.stop()
        calls = {
            "counting dead letters of 'd'": lambda: dlq.length("d"),
            "reading dead letters of 'd'": lambda: dlq.list("d"),
            "purging dead letters of 'd'": lambda: dlq.purge("d"),
        }
        for doing, call in calls.items():
            with pytest.raises(RedisUnavailable, match=f"unreachable while {doing}"):
                await call()
    finally:
        await client.aclose()
