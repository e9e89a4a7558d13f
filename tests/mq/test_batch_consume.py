"""Batch handlers (``Consumer.subscribe(..., batch=True)``) against a real server: bounded,
ordered batches; a return acknowledges every member, a raise retries every member, BatchFailed
settles the members it names (retry, then dead letter) and acknowledges the others once;
undecodable members are dead-lettered alone; a stop leaves a batch not finished pending, whole."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any

import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from redis_streaming import (
    BatchFailed,
    Consumer,
    DeadLetter,
    DeadLetters,
    InvalidArgument,
    Keys,
    Message,
    MQOptions,
    Producer,
    ProducerRecord,
    RetryPolicy,
)
from redis_streaming.metrics import Metrics
from redis_streaming.mq.topics import TopicStore
from tests.helpers import wait_until
from tests.metrics.test_instruments import total
from tests.mq.test_tracing import named, sdk

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff_s=0.05, jitter=0.0)


async def _nothing_left(redis: aioredis.Redis, ns: str, topic: str, group: str, parts: int) -> bool:
    """No entry pending in the group and no retry scheduled, on every partition."""
    keys = Keys(ns)
    for p in range(parts):
        if await redis.zcard(keys.retry(topic, p, group)):
            return False
        for stream in (keys.stream(topic, p), keys.redeliver(topic, p, group)):
            if (await redis.xpending(stream, group))["pending"]:
                return False
    return True


@pytest.mark.cluster
async def test_batches_are_bounded_by_batch_size_and_keep_partition_order(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("b", 3)
    producer = Producer(rs_redis, fast_options)
    sent = await producer.send_many(
        "b", [ProducerRecord({"n": n}, key=f"k{n % 5}") for n in range(200)]
    )
    batches: list[list[Message]] = []

    async def handle(messages: list[Message]) -> None:
        batches.append(messages)

    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("b", handle, group="g", batch=True, batch_size=7)
    async with consumer:
        await wait_until(lambda: sub.processed == 200, 15)
        await wait_until(lambda: _nothing_left(rs_redis, rs_namespace, "b", "g", 3), 5)
        more = await producer.send("b", {"n": 200}, key="k0")  # a later read: a batch of one
        await wait_until(lambda: sub.processed == 201, 10)
    assert all(1 <= len(b) <= 7 for b in batches)
    assert any(len(b) == 7 for b in batches)  # the backlog fills them
    assert batches[-1] == [m for m in batches[-1] if m.id == more.message_id]
    for b in batches:
        assert len({m.partition for m in b}) == 1  # one read of one partition
    seen: dict[int, list[str]] = defaultdict(list)
    for b in batches:
        for m in b:
            seen[m.partition].append(m.id)
    expected: dict[int, list[str]] = defaultdict(list)
    for r in [*sent, more]:
        assert r.message_id is not None
        expected[r.partition].append(r.message_id)
    assert seen == expected  # every message once, in partition order
    assert sub.in_flight == 0
    assert sub.failed == 0


async def test_batch_failed_retries_the_named_members_and_acknowledges_the_others_once(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("pf", 1)
    producer = Producer(rs_redis, fast_options)
    await producer.send_many("pf", list(range(10)))
    handled: Counter[int] = Counter()  # calls a member was in and not named as failed
    calls: list[list[tuple[int, int]]] = []

    async def handle(messages: list[Message]) -> None:
        calls.append([(m.payload, m.attempt) for m in messages])
        failures: dict[str, Exception] = {}
        for m in messages:
            if m.payload in (2, 5):
                failures[m.id] = ValueError(f"{m.payload} is broken")
            elif m.payload == 7:
                failures[m.id] = DeadLetter("seven is refused")
            elif m.payload == 8 and m.attempt == 1:
                failures[m.id] = RuntimeError("eight fails once")
            else:
                handled[m.payload] += 1
        if failures:
            raise BatchFailed(failures)

    reader = InMemoryMetricReader()
    metrics = Metrics(MeterProvider(metric_readers=[reader]).get_meter("test"))
    consumer = Consumer(rs_redis, fast_options, metrics=metrics)
    sub = consumer.subscribe("pf", handle, group="g", batch=True, retry=FAST_RETRY)
    async with consumer:
        await wait_until(lambda: sub.dead_lettered == 3 and sub.processed == 7, 15)
        await wait_until(lambda: _nothing_left(rs_redis, rs_namespace, "pf", "g", 1), 5)
        await asyncio.sleep(0.3)  # a window for a wrong extra call (not a synchronisation)
    assert calls[0] == [(n, 1) for n in range(10)]
    assert handled == Counter(range(10)) - Counter([2, 5, 7])  # each exactly once
    attempts: dict[int, list[int]] = defaultdict(list)
    for call in calls:
        for n, attempt in call:
            attempts[n].append(attempt)
    assert attempts[2] == attempts[5] == [1, 2, 3]  # retried, then dead-lettered
    assert attempts[7] == [1]  # DeadLetter: straight to the dead-letter stream
    assert attempts[8] == [1, 2]
    dead = await DeadLetters(rs_redis, fast_options).list("pf")
    reasons = {e.decoded(): (e.reason, e.attempts, e.error) for e in dead}
    assert reasons == {
        2: ("max_attempts", 3, "2 is broken"),
        5: ("max_attempts", 3, "5 is broken"),
        7: ("rejected", 1, "seven is refused"),
    }
    # Counters count members: 2 and 5 failed three times, 7 and 8 once.
    assert (sub.processed, sub.failed, sub.retried, sub.dead_lettered) == (7, 8, 5, 3)
    assert sub.in_flight == 0
    await wait_until(lambda: total(reader, "redis_streaming.messages.acked") == 7, 5)
    assert total(reader, "redis_streaming.messages.retried") == 5
    assert total(reader, "redis_streaming.messages.dead_lettered") == 3


async def test_a_raising_batch_handler_retries_every_member(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("rr", 1)
    await Producer(rs_redis, fast_options).send_many("rr", list(range(6)))
    seen: list[tuple[int, int]] = []
    failed_once = False

    async def handle(messages: list[Message]) -> None:
        nonlocal failed_once
        seen.extend((m.payload, m.attempt) for m in messages)
        if not failed_once:
            failed_once = True
            raise ConnectionError("the database is away")

    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("rr", handle, group="g", batch=True, retry=FAST_RETRY)
    async with consumer:
        await wait_until(lambda: sub.processed == 6, 10)
        await wait_until(lambda: _nothing_left(rs_redis, rs_namespace, "rr", "g", 1), 5)
    assert seen[:6] == [(n, 1) for n in range(6)]
    assert sorted(seen[6:]) == [(n, 2) for n in range(6)]  # each member retried, once
    assert (sub.failed, sub.retried, sub.dead_lettered) == (6, 6, 0)
    assert sub.last_error == "ConnectionError: the database is away"


async def test_a_batch_handler_raising_on_every_attempt_dead_letters_every_member(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("dl", 1)
    await Producer(rs_redis, fast_options).send_many("dl", ["a", "b", "c"])
    calls = 0

    async def handle(messages: list[Message]) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("always")

    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("dl", handle, group="g", batch=True, retry=FAST_RETRY)
    async with consumer:
        await wait_until(lambda: sub.dead_lettered == 3, 10)
        await wait_until(lambda: _nothing_left(rs_redis, rs_namespace, "dl", "g", 1), 5)
    dead = await DeadLetters(rs_redis, fast_options).list("dl")
    assert sorted((e.decoded(), e.reason, e.attempts) for e in dead) == [
        (x, "max_attempts", 3) for x in "abc"
    ]
    assert sub.processed == 0
    assert sub.failed == 9


async def test_blocking_mode_calls_again_with_the_members_still_failing(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("bl", 1)
    await Producer(rs_redis, fast_options).send_many("bl", list(range(5)))
    calls: list[list[tuple[int, int]]] = []

    async def handle(messages: list[Message]) -> None:
        calls.append([(m.payload, m.attempt) for m in messages])
        failing = {m.id: ValueError("not yet") for m in messages if m.payload in (1, 3)}
        if failing and messages[0].attempt < 3:
            raise BatchFailed(failing)

    policy = RetryPolicy(mode="blocking", max_attempts=5, initial_backoff_s=0.05, jitter=0.0)
    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("bl", handle, group="g", batch=True, retry=policy)
    async with consumer:
        await wait_until(lambda: sub.processed == 5, 10)
        await wait_until(lambda: _nothing_left(rs_redis, rs_namespace, "bl", "g", 1), 5)
    assert calls == [
        [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1)],
        [(1, 2), (3, 2)],  # only those still failing, in order
        [(1, 3), (3, 3)],
    ]
    assert (sub.failed, sub.retried) == (4, 4)


async def test_an_undecodable_member_is_dead_lettered_alone(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("ud", 1)
    producer = Producer(rs_redis, fast_options)
    await producer.send("ud", {"n": 1})
    stream = Keys(rs_namespace).stream("ud", 0)
    bad = await rs_redis.xadd(stream, {"payload": b"{not json", "content_type": "application/json"})
    await producer.send("ud", {"n": 2})
    batches: list[list[Any]] = []

    async def handle(messages: list[Message]) -> None:
        batches.append([m.payload for m in messages])

    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("ud", handle, group="g", batch=True)
    async with consumer:
        await wait_until(lambda: sub.processed == 2 and sub.dead_lettered == 1, 10)
        await wait_until(lambda: _nothing_left(rs_redis, rs_namespace, "ud", "g", 1), 5)
    assert batches == [[{"n": 1}, {"n": 2}]]
    [entry] = await DeadLetters(rs_redis, fast_options).list("ud")
    assert (entry.reason, entry.origin_id, entry.payload) == (
        "undecodable",
        bad.decode(),
        b"{not json",
    )


async def test_a_stop_leaves_the_batches_not_started_pending_and_the_next_owner_handles_them(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("st", 1)
    sent = await Producer(rs_redis, fast_options).send_many("st", list(range(10)))
    stream = Keys(rs_namespace).stream("st", 0)

    async def pending() -> int:
        return int((await rs_redis.xpending(stream, "g"))["pending"])

    # The first owner reads all ten at once and is stopped while handling them: its handler is
    # cancelled and nothing of the batch is acknowledged.
    entered = asyncio.Event()

    async def stuck(messages: list[Message]) -> None:
        entered.set()
        await asyncio.Event().wait()

    first = Consumer(rs_redis, fast_options, consumer_id="first")
    sub1 = first.subscribe("st", stuck, group="g", batch=True, batch_size=10)
    await first.start()
    try:
        await asyncio.wait_for(entered.wait(), 10)
        assert sub1.in_flight == 10  # members, not calls
    finally:
        await first.stop(timeout=0.1)
    assert await pending() == 10

    # The second claims the ten, in batches of four; a stop during the first batch lets it
    # finish (acknowledged) and starts no other: six stay pending.
    release = asyncio.Event()
    second_got: list[list[int]] = []

    async def slow(messages: list[Message]) -> None:
        second_got.append([m.payload for m in messages])
        await release.wait()

    second = Consumer(rs_redis, fast_options, consumer_id="second")
    sub2 = second.subscribe("st", slow, group="g", batch=True, batch_size=4)
    await second.start()
    try:
        await wait_until(lambda: sub2.in_flight == 4, 10)
    finally:
        stopping = asyncio.create_task(second.stop(timeout=10))
        await asyncio.sleep(0.2)  # the stop is requested while the batch runs
        release.set()
        await stopping
    assert second_got == [[0, 1, 2, 3]]
    assert sub2.processed == 4
    assert await pending() == 6

    batches: list[list[Message]] = []

    async def handle(messages: list[Message]) -> None:
        batches.append(messages)

    third = Consumer(rs_redis, fast_options, consumer_id="third")
    sub3 = third.subscribe("st", handle, group="g", batch=True, batch_size=4)
    async with third:
        await wait_until(lambda: sub3.processed == 6, 15)
        await wait_until(lambda: _nothing_left(rs_redis, rs_namespace, "st", "g", 1), 5)
    assert [[m.payload for m in b] for b in batches] == [[4, 5, 6, 7], [8, 9]]
    assert [m.id for b in batches for m in b] == [r.message_id for r in sent[4:]]
    assert [m.attempt for b in batches for m in b] == [3] * 6  # claimed twice: third delivery


async def test_a_paused_batch_listener_calls_nothing_until_resumed(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("pz", 1)
    producer = Producer(rs_redis, fast_options)
    got: list[int] = []

    async def handle(messages: list[Message]) -> None:
        got.extend(m.payload for m in messages)

    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("pz", handle, group="g", batch=True)
    async with consumer:
        await wait_until(lambda: sub.owned_partitions == [0], 10)
        sub.pause()
        await producer.send_many("pz", list(range(4)))
        await asyncio.sleep(0.5)  # a window for a wrong call (not a synchronisation)
        assert got == []
        sub.resume()
        await wait_until(lambda: got == [0, 1, 2, 3], 10)


def test_batch_failed_refuses_what_is_not_a_mapping_of_ids_to_exceptions() -> None:
    with pytest.raises(InvalidArgument, match=r"BatchFailed\(\{message.id: exc"):
        BatchFailed(["1-0"])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="got 1: ValueError"):
        BatchFailed({1: ValueError()})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgument, match="got '1-0': 'no'"):
        BatchFailed({"1-0": "no"})  # type: ignore[dict-item]
    error = BatchFailed({"1-0": ValueError("bad")})
    assert error.failures == {"1-0": error.failures["1-0"]}
    assert str(error) == "1 member(s) of the batch failed: 1-0 (ValueError: bad)"


async def test_a_batch_call_runs_in_one_span_linked_to_each_members_trace(
    rs_redis: aioredis.Redis, fast_options: MQOptions
) -> None:
    exporter, tracer = sdk()
    await TopicStore(rs_redis, fast_options).create("tr", 1)
    producer = Producer(rs_redis, fast_options, tracer=tracer)
    for n in range(3):
        await producer.send("tr", n)
    calls: list[int] = []

    async def handle(messages: list[Message]) -> None:
        calls.append(len(messages))

    consumer = Consumer(rs_redis, fast_options, tracer=tracer)
    sub = consumer.subscribe("tr", handle, group="g", batch=True)
    async with consumer:
        await wait_until(lambda: sub.processed == 3, 10)
    sends = named(exporter, "send tr")
    [process] = named(exporter, "process tr")
    assert calls == [3]
    assert process.attributes is not None
    assert process.attributes["messaging.batch.message_count"] == 3
    assert process.parent is None  # a trace of its own, linked to the members' traces
    linked = {link.context.span_id for link in process.links}
    assert linked == {s.get_span_context().span_id for s in sends}  # type: ignore[union-attr]
