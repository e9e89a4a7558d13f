"""``process()`` timers: an event-time timer fires once, right after the batch whose watermark
reaches it, with its name, time and domain, and its ``on_timer`` can emit and use state; a
wall-clock timer fires after its time with no new input; a cancelled one never fires; timers
left by a stopped job fire once in the next one."""

from __future__ import annotations

import time
from typing import Any

from redis_streaming import Job, MQOptions, RuntimeOptions, StateReader
from redis_streaming.runtime.keys import RuntimeKeys
from tests.helpers import wait_until
from tests.runtime.support import running_job, wait_idle
from tests.window.support import T0, feed, records, send, source, topics

ONE = RuntimeOptions(batch_size=1, retry_backoff_ms=10, forward_interval_ms=20)


def on_record(ctx: Any, value: dict[str, Any]) -> None:
    seen = ctx.state("seen")
    seen.set((seen.get() or 0) + 1)
    op, name = value.get("op"), value.get("name", "")
    if op == "event":
        ctx.timers.at_event_time(value["at"], name=name)
    elif op == "wall":
        ctx.timers.at_wall_time(value["at"], name=name)
    elif op == "cancel":
        ctx.timers.cancel(name)
    ctx.emit({"rec": value["id"]})


def on_timer(ctx: Any, timer: Any) -> None:
    seen = ctx.state("seen")
    n = seen.get()
    seen.set(n + 100)
    ctx.emit({"timer": timer.name, "at": timer.at, "domain": timer.domain, "seen": n})


def timer_job(name: str) -> Job:
    job = Job(name, partitions=1)
    source(job).process(on_record, stores=["seen"], on_timer=on_timer, name="t").to("out")
    return job


def rec(i: int, key: str, ts: int, **timer: Any) -> dict[str, Any]:
    return {"id": i, "k": key, "ts": ts, "v": 0, **timer}


async def test_event_time_timers_fire_once_when_the_watermark_passes(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await topics(rs_redis, fast_options, "out")
    await feed(rs_redis, fast_options, "in", [
        rec(0, "a", T0, op="event", at=T0 + 1000, name="x"),
        rec(1, "a", T0, op="event", at=T0 + 500, name="y"),
        rec(2, "b", T0 + 100, op="event", at=T0 + 800, name="x"),
        rec(3, "b", T0 + 200, op="cancel", name="x"),
        rec(4, "a", T0 + 499),
        rec(5, "a", T0 + 500),  # the watermark reaches y
        rec(6, "c", T0 + 1200),  # and passes a's x (b's x was cancelled)
        rec(7, "c", T0 + 2000),
    ])  # fmt: skip
    async with running_job(timer_job("ev"), rs_redis, fast_options, ONE) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    assert await records(rs_redis, fast_options, "out") == [
        *({"rec": i} for i in range(6)),
        {"timer": "y", "at": T0 + 500, "domain": "event", "seen": 4},
        {"rec": 6},
        {"timer": "x", "at": T0 + 1000, "domain": "event", "seen": 104},
        {"rec": 7},
    ]
    assert await StateReader(rs_redis, fast_options).items("ev", "seen") == {
        "a": 204, "b": 2, "c": 2,
    }  # fmt: skip
    timers = RuntimeKeys(fast_options.namespace).timers("in", 0, "ev.s0")
    assert await rs_redis.zcard(timers) == 0


async def test_wall_clock_timers_fire_after_their_time_without_new_input(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await topics(rs_redis, fast_options, "out")
    at = int(time.time() * 1000) + 800
    await feed(rs_redis, fast_options, "in", [
        rec(0, "a", T0, op="wall", at=at, name="w"),
        rec(1, "b", T0, op="wall", at=at, name="w"),
        rec(2, "b", T0, op="cancel", name="w"),
    ])  # fmt: skip
    async with running_job(timer_job("wall"), rs_redis, fast_options, ONE):

        async def fired() -> bool:
            return len(await records(rs_redis, fast_options, "out")) == 4

        await wait_until(fired, what="the wall-clock timer")
        assert time.time() * 1000 >= at
        await send(rs_redis, fast_options, "in", [rec(3, "a", T0)])  # no second firing

        async def five() -> bool:
            return len(await records(rs_redis, fast_options, "out")) >= 5

        await wait_until(five, what="record 3")
    assert await records(rs_redis, fast_options, "out") == [
        {"rec": 0}, {"rec": 1}, {"rec": 2},
        {"timer": "w", "at": at, "domain": "wall", "seen": 1},
        {"rec": 3},
    ]  # fmt: skip


async def test_timers_left_by_a_stopped_job_fire_once_in_the_next(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await topics(rs_redis, fast_options, "out")
    at = int(time.time() * 1000) + 1500
    await feed(rs_redis, fast_options, "in", [
        rec(0, "a", T0, op="event", at=T0 + 50, name="early"),
        rec(1, "a", T0 + 100, op="event", at=T0 + 1000, name="later"),
        rec(2, "a", T0 + 100, op="wall", at=at, name="w"),
    ])  # fmt: skip
    async with running_job(timer_job("rt"), rs_redis, fast_options, ONE, "c1") as handle:
        await wait_idle(rs_redis, fast_options, handle)
    keys = RuntimeKeys(fast_options.namespace)
    assert await rs_redis.zcard(keys.timers("in", 0, "rt.s0")) == 1  # "early" fired, removed
    assert await rs_redis.zcard(keys.wall_timers("in", 0, "rt.s0")) == 1
    assert await records(rs_redis, fast_options, "out") == [
        {"rec": 0}, {"rec": 1},
        {"timer": "early", "at": T0 + 50, "domain": "event", "seen": 2},
        {"rec": 2},
    ]  # fmt: skip
    async with running_job(timer_job("rt"), rs_redis, fast_options, ONE, "c2") as handle:

        async def count(n: int) -> bool:
            return len(await records(rs_redis, fast_options, "out")) >= n

        await wait_until(lambda: count(5), what="the wall timer after the restart")
        await send(rs_redis, fast_options, "in", [rec(3, "b", T0 + 1000)])
        await wait_until(lambda: count(7), what="the event timer after the restart")
        await wait_idle(rs_redis, fast_options, handle)
    out = await records(rs_redis, fast_options, "out")
    assert out[4:] == [
        {"timer": "w", "at": at, "domain": "wall", "seen": 103},
        {"rec": 3},
        {"timer": "later", "at": T0 + 1000, "domain": "event", "seen": 203},
    ]
