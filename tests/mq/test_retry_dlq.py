"""Retries with backoff, dead letters, and replay, against a real server."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

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
    Retry,
    RetryPolicy,
)
from redis_streaming.mq.topics import TopicStore
from tests.helpers import fast_mq, wait_until
from tests.mq.procs import parse, spawn

# A retry's due time is whole milliseconds of the server's clock (TIME truncated to ms, plus the
# delay), so it may run up to a millisecond before its exact delay has passed.
MS = 0.001


@pytest.mark.cluster
async def test_fails_twice_then_succeeds_with_policy_delays(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("r", 2)
    calls: list[tuple[int, float]] = []
    other: Counter[str] = Counter()

    async def flaky(m: Message) -> None:
        calls.append((m.attempt, time.monotonic()))
        if m.attempt < 3:
            raise RuntimeError(f"attempt {m.attempt} fails")

    async def steady(m: Message) -> None:
        other[m.payload] += 1

    policy = RetryPolicy(initial_backoff_s=0.4, multiplier=2.0, jitter=0.0)
    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("r", flaky, group="flaky", retry=policy)
    consumer.subscribe("r", steady, group="steady")
    async with consumer:
        await Producer(rs_redis, fast_options).send("r", "order-1", key="k")
        await wait_until(lambda: len(calls) == 3 and sub.processed == 1, 10)
        await asyncio.sleep(0.5)  # a window for a wrong extra call (not a synchronisation)
    assert [a for a, _ in calls] == [1, 2, 3]
    tick = fast_options.delayed_interval_ms / 1000
    first_gap, second_gap = calls[1][1] - calls[0][1], calls[2][1] - calls[1][1]
    assert 0.4 - MS <= first_gap <= 0.4 + tick + 0.15
    assert 0.8 - MS <= second_gap <= 0.8 + tick + 0.15
    assert other == {"order-1": 1}  # the other group saw the message exactly once
    assert sub.retried == 2
    keys = Keys(rs_namespace)
    for p in range(2):
        assert await rs_redis.zcard(keys.retry("r", p, "flaky")) == 0
        for stream in (keys.stream("r", p), keys.redeliver("r", p, "flaky")):
            assert (await rs_redis.xpending(stream, "flaky"))["pending"] == 0


@pytest.mark.cluster
async def test_exhausted_retries_dead_letter_then_replay_to_that_group_only(
    rs_redis: aioredis.Redis, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("d", 3)
    calls: list[Message] = []
    healed = False
    other: list[str] = []

    async def broken(m: Message) -> None:
        calls.append(m)
        if not healed:
            raise ValueError("bad amount")

    async def steady(m: Message) -> None:
        other.append(m.payload["id"])

    consumer = Consumer(rs_redis, fast_options, consumer_id="worker-1")
    sub = consumer.subscribe(
        "d", broken, group="billing", retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.05)
    )
    consumer.subscribe("d", steady, group="audit")
    async with consumer:
        sent = await Producer(rs_redis, fast_options).send("d", {"id": "o-9"}, key="cust-1")
        await wait_until(lambda: sub.dead_lettered == 1, 10)
        await asyncio.sleep(0.3)  # a window for a wrong fourth attempt (not a synchronisation)
        assert [m.attempt for m in calls] == [1, 2, 3]

        dlq = DeadLetters(rs_redis, fast_options)
        [entry] = await dlq.list("d")
        assert entry.topic == "d"
        assert entry.partition == sent.partition
        assert entry.group == "billing"
        assert entry.consumer == "worker-1"
        assert entry.attempts == 3
        assert entry.reason == "max_attempts"
        assert entry.error_type == "ValueError"
        assert entry.error == "bad amount"
        assert "ValueError: bad amount" in entry.traceback
        assert entry.payload == b'{"id":"o-9"}'
        assert entry.decoded() == {"id": "o-9"}
        assert entry.key == "cust-1"
        assert entry.origin_id == sent.message_id
        assert await dlq.list("d", group="audit") == []
        assert await dlq.get("d", entry.id) == entry

        healed = True
        assert await dlq.replay("d", [entry.id]) == 1
        await wait_until(lambda: len(calls) == 4 and sub.processed == 1, 10)
        assert calls[-1].attempt == 1
        assert calls[-1].origin_id == sent.message_id
        assert await dlq.length("d") == 0
        await asyncio.sleep(0.5)  # a window for the replay to reach audit wrongly
    assert other == ["o-9"]  # replay went to billing only


@pytest.mark.cluster
async def test_undecodable_and_rejected_go_to_the_dlq_at_once(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("u", 1)
    keys = Keys(rs_namespace)
    calls: list[object] = []

    async def handle(m: Message) -> None:
        calls.append(m.payload)
        if m.payload == "reject me":
            raise DeadLetter("customer unknown")

    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("u", handle, group="g")
    async with consumer:
        await rs_redis.xadd(
            keys.stream("u", 0), {"payload": b"{not json", "content_type": "application/json"}
        )
        await Producer(rs_redis, fast_options).send("u", "reject me")
        await wait_until(lambda: sub.dead_lettered == 2, 10)
    assert calls == ["reject me"]
    entries = {e.reason: e for e in await DeadLetters(rs_redis, fast_options).list("u")}
    assert set(entries) == {"undecodable", "rejected"}
    assert entries["undecodable"].payload == b"{not json"
    assert entries["undecodable"].error_type == "DecodeError"
    assert entries["rejected"].error == "customer unknown"
    assert entries["rejected"].attempts == 1
    assert sub.retried == 0


async def test_non_retryable_and_explicit_retry_after(
    rs_redis: aioredis.Redis, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("n", 1)
    calls: list[tuple[str, int, float]] = []

    async def handle(m: Message) -> None:
        calls.append((m.payload, m.attempt, time.monotonic()))
        if m.payload == "fatal":
            raise KeyError("no such thing")
        if m.attempt == 1:
            raise Retry(after=0.05)

    policy = RetryPolicy(initial_backoff_s=5, non_retryable=("builtins.KeyError",))
    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("n", handle, group="g", retry=policy)
    async with consumer:
        producer = Producer(rs_redis, fast_options)
        await producer.send("n", "fatal")
        await producer.send("n", "later")
        await wait_until(lambda: sub.dead_lettered == 1 and sub.processed == 1, 10)
    assert [(p, a) for p, a, _ in calls] == [("fatal", 1), ("later", 1), ("later", 2)]
    assert calls[2][2] - calls[1][2] < 1.0  # Retry(after=0.05), not the 5 s policy delay
    [entry] = await DeadLetters(rs_redis, fast_options).list("n")
    assert (entry.reason, entry.error_type) == ("non_retryable", "KeyError")


async def test_blocking_retries_keep_partition_order(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("b", 1)
    done: list[tuple[int, int]] = []

    async def handle(m: Message) -> None:
        if m.payload == 0 and m.attempt < 3:
            raise RuntimeError("not yet")
        done.append((m.payload, m.attempt))

    policy = RetryPolicy(mode="blocking", initial_backoff_s=0.05, jitter=0)
    consumer = Consumer(rs_redis, fast_options)
    consumer.subscribe("b", handle, group="g", retry=policy)
    async with consumer:
        await Producer(rs_redis, fast_options).send_many("b", [0, 1, 2])
        await wait_until(lambda: len(done) == 3, 10)
    assert done == [(0, 3), (1, 1), (2, 1)]
    keys = Keys(rs_namespace)
    assert await rs_redis.zcard(keys.retry("b", 0, "g")) == 0


@pytest.mark.cluster
@pytest.mark.slow
async def test_kill_9_between_failure_and_retry_still_retries(
    rs_redis: aioredis.Redis, rs_namespace: str, rs_url: str
) -> None:
    options = fast_mq(rs_namespace, retry=RetryPolicy(initial_backoff_s=2.0, jitter=0))
    await TopicStore(rs_redis, options).create("k", 1)
    keys = Keys(rs_namespace)
    record = f"{rs_namespace}:record"
    proc = spawn(rs_url, options, "k", "g", "doomed", record, 0, "fail-first")
    try:
        await Producer(rs_redis, options).send("k", 42)

        async def scheduled() -> bool:
            return int(await rs_redis.zcard(keys.retry("k", 0, "g"))) == 1

        await wait_until(scheduled, 10, "the retry to be scheduled")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.stdout:
            proc.stdout.close()
    # the failed entry was acknowledged in the same script that scheduled the retry
    assert (await rs_redis.xpending(keys.stream("k", 0), "g"))["pending"] == 0
    got: list[Message] = []

    async def handle(m: Message) -> None:
        got.append(m)

    consumer = Consumer(rs_redis, options, consumer_id="heir")
    consumer.subscribe("k", handle, group="g")
    async with consumer:
        await wait_until(lambda: len(got) == 1, 15, "the retry after the kill")
    assert got[0].payload == 42
    assert got[0].attempt == 2
    records = parse(await rs_redis.lrange(record, 0, -1))
    assert [(r.consumer, r.attempt) for r in records] == [("doomed", 1)]


@pytest.mark.parametrize("mode", ["delayed", "blocking"])
async def test_retry_after_counts_as_an_attempt_and_runs_out(
    rs_redis: aioredis.Redis, fast_options: MQOptions, mode: str
) -> None:
    await TopicStore(rs_redis, fast_options).create("again", 1)
    attempts: list[int] = []

    async def handle(m: Message) -> None:
        attempts.append(m.attempt)
        raise Retry(after=0.01)  # never succeeds

    policy = RetryPolicy(max_attempts=3, mode=mode)
    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("again", handle, group="g", retry=policy)
    async with consumer:
        await Producer(rs_redis, fast_options).send("again", "x")
        await wait_until(lambda: sub.dead_lettered == 1, 10, "the dead letter")
    assert attempts == [1, 2, 3]
    [entry] = await DeadLetters(rs_redis, fast_options).list("again")
    assert (entry.reason, entry.attempts, entry.error_type) == ("max_attempts", 3, "Retry")


async def test_a_stop_during_a_blocking_backoff_leaves_the_entry_pending(
    rs_redis: aioredis.Redis, rs_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    options = fast_mq(rs_namespace, shutdown_timeout_s=10)
    await TopicStore(rs_redis, options).create("bs", 1)
    stream = Keys(rs_namespace).stream("bs", 0)
    calls: list[tuple[str, int]] = []

    async def failing(m: Message) -> None:
        calls.append(("first", m.attempt))
        raise RuntimeError("dependency down")

    policy = RetryPolicy(mode="blocking", initial_backoff_s=30, max_backoff_s=30)
    first = Consumer(rs_redis, options, consumer_id="first")
    sub = first.subscribe("bs", failing, group="g", retry=policy)
    async with first:
        await Producer(rs_redis, options).send("bs", "order-3")
        await wait_until(lambda: sub.retried == 1, 10, "the worker waiting its 30 s backoff")
    # the stop ended the wait: the worker was not still "running" when shutdown_timeout_s ran out
    assert "cancelling it" not in caplog.text
    assert calls == [("first", 1)]  # not called again because of the stop
    assert (await rs_redis.xpending(stream, "g"))["pending"] == 1
    assert await DeadLetters(rs_redis, options).length("bs") == 0

    async def healed(m: Message) -> None:
        calls.append(("second", m.attempt))

    second = Consumer(rs_redis, options, consumer_id="second")
    second.subscribe("bs", healed, group="g", retry=policy)
    async with second:
        await wait_until(lambda: len(calls) == 2, 10, "the next owner handling it")
    assert calls[1] == ("second", 2)  # Redis's delivery count carries the attempt on
    assert (await rs_redis.xpending(stream, "g"))["pending"] == 0


async def test_a_retry_shorter_than_a_blocking_read_is_on_time(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    # N8: a retry's schedule went out in front of the next read, which blocks up to block_ms,
    # and the retry mover was woken only when that read returned: the retry ran about block_ms
    # after the failure instead of its delay. (The mover's own look every rebalance interval
    # must not hide it: 2 s here.)
    options = fast_mq(rs_namespace, block_ms=1000, rebalance_interval_s=2.0, lease_ttl_s=6.0)
    await TopicStore(rs_redis, options).create("soon", 1)
    delay = 0.2
    calls: dict[int, list[float]] = {}

    async def handle(m: Message) -> None:
        calls.setdefault(m.payload, []).append(time.monotonic())
        if m.attempt == 1:
            raise RuntimeError("once")

    policy = RetryPolicy(initial_backoff_s=delay, jitter=0)
    consumer = Consumer(rs_redis, options)
    sub = consumer.subscribe("soon", handle, group="g", retry=policy)
    producer = Producer(rs_redis, options)
    async with consumer:
        for n in range(3):  # one after the other: each failure is followed by an idle read
            await producer.send("soon", n)
            await wait_until(lambda n=n: sub.processed == n + 1, 10, f"message {n} retried")
    tick = options.delayed_interval_ms / 1000
    gaps = [times[1] - times[0] for times in calls.values()]
    assert all(delay - MS <= gap <= delay + tick + 0.15 for gap in gaps), gaps
