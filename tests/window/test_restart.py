"""Event time survives a restart: a job stopped with windows open and started again (another
consumer) closes each window exactly once with the reference's values, decides lateness with the
watermark the last commit persisted (``max_ts`` and ``wm_floor`` in the task hash) and fires the
timers the first run left in Redis."""

from __future__ import annotations

from typing import Any

import pytest

from redis_streaming import Job, MQOptions, windows
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.window.clock import NEVER
from tests.helpers import wait_until
from tests.runtime.support import running_job, wait_idle
from tests.window import reference as ref
from tests.window.support import (
    RUNTIME,
    T0,
    aggregation,
    feed,
    generate,
    records,
    results,
    send,
    source,
    topics,
)


def tumbling_job(name: str, **window: Any) -> Job:
    job = Job(name, partitions=1)
    (source(job).window(windows.tumbling(1), grace=0.3, late_to="late", **window)
        .aggregate(**aggregation()).final().to("final"))  # fmt: skip
    return job


async def task_hash(redis: Any, options: MQOptions, job: str) -> dict[bytes, bytes]:
    result: dict[bytes, bytes] = await redis.hgetall(
        RuntimeKeys(options.namespace).task("in", 0, f"{job}.s0")
    )
    return result


@pytest.mark.cluster
async def test_windows_open_at_a_stop_close_once_after_a_restart_with_the_persisted_clock(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    recs = generate(11, 80, step=90, jitter=2000, far=8000)
    first, rest = recs[:50], recs[50:]
    top = max(r["ts"] for r in first)
    # Key d only before the stop: its window closes by the timer the first run persisted. The
    # first record after the restart is late only by the watermark of the first run.
    first.append({"id": 900, "k": "d", "ts": top, "v": 7})
    rest.insert(0, {"id": 901, "k": "a", "ts": top - 2000, "v": 1})
    exp = ref.hopping(first + rest, 1000, 1000, 300, 0)
    assert {"id": 901, "k": "a", "ts": top - 2000, "v": 1} in exp.late
    await topics(rs_redis, fast_options, "final", "late")
    await feed(rs_redis, fast_options, "in", first)
    job = tumbling_job("restart")
    async with running_job(job, rs_redis, fast_options, RUNTIME, consumer_id="c1") as handle:
        await wait_idle(rs_redis, fast_options, handle)
    before = await results(rs_redis, fast_options, "final")
    state = await task_hash(rs_redis, fast_options, "restart")
    assert int(state[b"max_ts"]) == top
    assert int(state[b"wm_floor"]) == NEVER
    timers = RuntimeKeys(fast_options.namespace).timers("in", 0, "restart.s0")
    assert await rs_redis.zcard(timers) >= 1  # windows open, one timer per key
    assert int((await rs_redis.zrange(timers, 0, 0, withscores=True))[0][1]) > top

    await send(rs_redis, fast_options, "in", rest)
    job = tumbling_job("restart")
    async with running_job(job, rs_redis, fast_options, RUNTIME, consumer_id="c2") as handle:
        await wait_idle(rs_redis, fast_options, handle)
    final = await results(rs_redis, fast_options, "final")
    assert final[: len(before)] == before
    assert sorted(final, key=lambda w: w[:3]) == exp.final  # each window once
    assert ("d", top - top % 1000, top - top % 1000 + 1000, {"n": 1, "s": 7, "c": [900]}) in final
    assert await records(rs_redis, fast_options, "late") == exp.late
    state = await task_hash(rs_redis, fast_options, "restart")
    assert int(state[b"max_ts"]) == max(r["ts"] for r in rest)


async def test_the_watermark_an_idle_partition_reached_survives_a_restart(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await topics(rs_redis, fast_options, "final", "late")
    await feed(rs_redis, fast_options, "in", [{"id": 0, "k": "a", "ts": T0 + 100, "v": 1}])
    job = tumbling_job("floor", idle_timeout=0.3)
    async with running_job(job, rs_redis, fast_options, RUNTIME, consumer_id="c1"):

        async def closed() -> bool:
            return len(await results(rs_redis, fast_options, "final")) == 1

        await wait_until(closed, what="the window closed by idle advance")
    state = await task_hash(rs_redis, fast_options, "floor")
    assert int(state[b"max_ts"]) == T0 + 100
    assert int(state[b"wm_floor"]) >= T0 + 1300  # the close: end + grace
    # Behind the floor (late) though ahead of max_ts - the first run's idle advance counts.
    late = {"id": 1, "k": "a", "ts": T0 + 200, "v": 1}
    await send(rs_redis, fast_options, "in", [late])
    job = tumbling_job("floor", idle_timeout=0.3)
    async with running_job(job, rs_redis, fast_options, RUNTIME, consumer_id="c2") as handle:
        await wait_idle(rs_redis, fast_options, handle)
        assert handle.status().stages[0].late_records == 1
    assert await records(rs_redis, fast_options, "late") == [late]
    assert await results(rs_redis, fast_options, "final") == [
        ("a", T0, T0 + 1000, {"n": 1, "s": 1, "c": [0]})
    ]
