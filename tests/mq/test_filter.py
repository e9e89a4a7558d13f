"""``Consumer.subscribe(..., filter=...)`` against a real server: what the filter skips is
acknowledged without a handler call and counted; a filter that raises fails the message as a
raising handler would (retried, then dead-lettered); in batch mode the skipped members leave
the batch."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Literal

import pytest
import redis.asyncio as aioredis

from redis_streaming import (
    BatchFailed,
    ConfigurationError,
    Consumer,
    DeadLetters,
    Keys,
    Message,
    MQOptions,
    Producer,
    ProducerRecord,
    RetryPolicy,
)
from redis_streaming.mq.topics import TopicStore
from tests.helpers import wait_until


async def _none_pending(redis: aioredis.Redis, ns: str, topic: str, group: str, parts: int) -> bool:
    """No entry pending in the group, in its partition and redelivery streams (XPENDING)."""
    keys = Keys(ns)
    for p in range(parts):
        for stream in (keys.stream(topic, p), keys.redeliver(topic, p, group)):
            if (await redis.xpending(stream, group))["pending"]:
                return False
    return True


def _records(n: int) -> list[ProducerRecord]:
    kinds = ("order", "ping")
    return [
        ProducerRecord({"n": i}, key=f"k{i % 3}", headers={"type": kinds[i % 2]}) for i in range(n)
    ]


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
async def test_a_filter_acknowledges_what_it_skips_without_calling_the_handler(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions, batch: bool
) -> None:
    await TopicStore(rs_redis, fast_options).create("f", 2)
    await Producer(rs_redis, fast_options).send_many("f", _records(40))
    got: list[Message] = []
    batches: list[int] = []

    async def handle(message: Message) -> None:
        got.append(message)

    async def handle_batch(messages: list[Message]) -> None:
        batches.append(len(messages))
        got.extend(messages)

    def orders(m: Message) -> bool:
        return m.headers.get("type") == "order"

    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe(
        "f", handle_batch if batch else handle, group="g", filter=orders, batch=batch
    )
    async with consumer:
        await wait_until(lambda: sub.processed + sub.filtered == 40, 10)
        await wait_until(lambda: _none_pending(rs_redis, rs_namespace, "f", "g", 2), 5, "acks")
        await asyncio.sleep(0.3)  # a window for a wrong extra call (not a synchronisation)
    assert sorted(m.payload["n"] for m in got) == list(range(0, 40, 2))
    assert all(m.headers["type"] == "order" for m in got)
    assert (sub.processed, sub.filtered, sub.failed, sub.retried) == (20, 20, 0, 0)
    if batch:
        assert sum(batches) == 20


@pytest.mark.parametrize("mode", ["delayed", "blocking"])
async def test_a_raising_filter_is_retried_then_dead_lettered(
    rs_redis: aioredis.Redis,
    rs_namespace: str,
    fast_options: MQOptions,
    mode: Literal["delayed", "blocking"],
) -> None:
    await TopicStore(rs_redis, fast_options).create("rf", 1)
    await Producer(rs_redis, fast_options).send_many("rf", ["flaky", "broken", "fine"])
    screened: Counter[str] = Counter()
    handled: list[tuple[str, int]] = []

    def screen(m: Message) -> bool:
        screened[m.payload] += 1
        if m.payload == "broken" or (m.payload == "flaky" and m.attempt == 1):
            raise KeyError(f"no header in {m.payload}")
        return True

    async def handle(m: Message) -> None:
        handled.append((m.payload, m.attempt))

    policy = RetryPolicy(mode=mode, max_attempts=3, initial_backoff_s=0.05, jitter=0.0)
    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("rf", handle, group="g", filter=screen, retry=policy)
    async with consumer:
        await wait_until(lambda: sub.processed == 2 and sub.dead_lettered == 1, 10)
        await wait_until(lambda: _none_pending(rs_redis, rs_namespace, "rf", "g", 1), 5, "acks")
    assert sorted(handled) == [("fine", 1), ("flaky", 2)]  # the filter ran again on the retry
    assert screened == {"flaky": 2, "broken": 3, "fine": 1}
    [dead] = await DeadLetters(rs_redis, fast_options).list("rf")
    assert (dead.decoded(), dead.reason, dead.attempts) == ("broken", "max_attempts", 3)
    assert dead.error_type == "KeyError"
    assert (sub.failed, sub.retried, sub.filtered) == (4, 3, 0)


async def test_in_batch_mode_a_raising_filter_fails_that_member_alone(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("bf", 1)
    await Producer(rs_redis, fast_options).send_many("bf", list(range(8)))
    calls: list[list[tuple[int, int]]] = []

    def screen(m: Message) -> bool:
        if m.payload == 3 and m.attempt == 1:
            raise ValueError("cannot tell yet")
        return bool(m.payload % 4)  # 0 and 4 are skipped

    async def handle(messages: list[Message]) -> None:
        calls.append([(m.payload, m.attempt) for m in messages])
        if any(m.payload == 6 and m.attempt == 1 for m in messages):
            raise BatchFailed({m.id: RuntimeError("six") for m in messages if m.payload == 6})

    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.05, jitter=0.0)
    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("bf", handle, group="g", filter=screen, batch=True, retry=policy)
    async with consumer:
        await wait_until(lambda: sub.processed == 6 and sub.filtered == 2, 10)
        await wait_until(lambda: _none_pending(rs_redis, rs_namespace, "bf", "g", 1), 5, "acks")
    assert calls[0] == [(1, 1), (2, 1), (5, 1), (6, 1), (7, 1)]  # 0, 4 skipped; 3 failed
    assert sorted(x for call in calls[1:] for x in call) == [(3, 2), (6, 2)]
    assert (sub.failed, sub.retried, sub.dead_lettered) == (2, 2, 0)


def test_a_filter_must_be_a_plain_function(rs_options: MQOptions) -> None:
    async def handle(m: Message) -> None: ...

    async def async_filter(m: Message) -> bool:
        return True

    consumer = Consumer(None, rs_options)
    with pytest.raises(ConfigurationError, match=r"plain \(not async\) function of the Message"):
        consumer.subscribe("t", handle, group="g", filter=async_filter)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="filter=lambda m:"):
        consumer.subscribe("t", handle, group="g", filter="type == order")  # type: ignore[arg-type]
