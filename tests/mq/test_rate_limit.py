"""A subscription's rate limit: global over the group's consumers, never dropping, and pause
and stop still acting at once while a worker waits its turn. Real server, real consumers."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest

from redis_streaming import ConfigurationError, Consumer, Keys, Message, MQOptions, Producer
from redis_streaming.mq.topics import TopicStore
from tests.helpers import running, wait_until


def most_in_any_window(times: list[float], window_s: float) -> int:
    """The largest number of ``times`` inside one window of ``window_s`` seconds."""
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + window_s) for i, start in enumerate(times))


async def test_two_consumers_of_a_group_share_one_limit_and_drop_nothing(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("orders", 4)
    handled: list[float] = []
    seen: Counter[int] = Counter()

    async def handle(m: Message) -> None:
        handled.append(time.monotonic())
        seen[m.payload["n"]] += 1

    consumers = [Consumer(rs_redis, fast_options, consumer_id=f"c{i}") for i in range(2)]
    for c in consumers:
        c.subscribe("orders", handle, group="billing", rate_limit="40/s")
    async with running(*consumers):
        subs = [c.subscriptions[0] for c in consumers]
        await wait_until(lambda: all(len(s.owned_partitions) == 2 for s in subs), 10, "balance")
        await Producer(rs_redis, fast_options).send_many("orders", [{"n": n} for n in range(100)])
        await wait_until(lambda: len(handled) >= 100, 20, "all handled")
    assert sorted(seen) == list(range(100))
    assert set(seen.values()) == {1}
    # Both consumers together, not each: 40 a second plus the one token of the burst (and a
    # little for timestamps taken after the turn came).
    assert most_in_any_window(handled, 1.0) <= 40 + 1 + 2
    assert all(s.processed > 0 for s in subs)  # the group's work was shared


async def test_stop_ends_a_wait_for_a_turn_at_once_and_leaves_the_entries_pending(
    rs_redis: Any, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("slow", 1)
    handled: list[int] = []

    async def handle(m: Message) -> None:
        handled.append(m.payload)

    consumer = Consumer(rs_redis, fast_options, consumer_id="limited")
    consumer.subscribe("slow", handle, group="g", rate_limit="1/min")
    await Producer(rs_redis, fast_options).send_many("slow", [1, 2, 3])
    await consumer.start()
    try:
        await wait_until(lambda: handled == [1], 10, "the first message")
        await asyncio.sleep(0.3)  # the worker now waits a minute for the second one's turn
    finally:
        # A wait for a turn ends with the stop request: far sooner than the minute, and
        # without the grace period's cancellation.
        async with asyncio.timeout(5):
            await consumer.stop(timeout=30)
    assert handled == [1]
    # Nothing dropped: the other two are the next owner's.
    again = Consumer(rs_redis, fast_options, consumer_id="unlimited")
    again.subscribe("slow", handle, group="g")
    async with running(again):
        await wait_until(lambda: len(handled) == 3, 10, "the rest")
    assert handled == [1, 2, 3]
    info = await rs_redis.xinfo_groups(Keys(rs_namespace).stream("slow", 0))
    assert info[0]["pending"] == 0


async def test_a_pause_during_a_wait_for_a_turn_holds_the_entry_until_resumed(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("p", 1)
    handled: list[int] = []

    async def handle(m: Message) -> None:
        handled.append(m.payload)

    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("p", handle, group="g", rate_limit="1/2s")
    await Producer(rs_redis, fast_options).send_many("p", [1, 2])
    async with running(consumer):
        await wait_until(lambda: handled == [1], 10, "the first message")
        sub.pause()  # the second one's turn comes in about 2 s, while paused
        await asyncio.sleep(3)
        assert handled == [1]
        sub.resume()
        await wait_until(lambda: handled == [1, 2], 10, "the held message")


@pytest.mark.parametrize("spec", ["100", "100/fortnight", "0/s", "100/s, burst=x"])
def test_a_bad_rate_limit_is_refused_at_subscription(
    rs_redis: Any, fast_options: MQOptions, spec: str
) -> None:
    async def handle(m: Message) -> None: ...

    consumer = Consumer(rs_redis, fast_options)
    with pytest.raises(ConfigurationError, match="'100/s'"):
        consumer.subscribe("t", handle, group="g", rate_limit=spec)
    assert consumer.subscriptions == []
