"""When windows close: exactly when the watermark reaches the close (not one millisecond
before), records at the close are late; and on a quiet partition, by the wall clock after
``idle_timeout``, with no new input."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from redis_streaming import Job, JobHandle, MQOptions, RuntimeOptions, windows
from redis_streaming.window import WindowKind
from tests.helpers import wait_until
from tests.runtime.support import running_job, wait_idle
from tests.window import reference as ref
from tests.window.support import (
    RUNTIME,
    T0,
    aggregation,
    closer,
    feed,
    records,
    results,
    send,
    source,
    topics,
)

# kind; the start and end of key a's window holding T0 + 100; the watermark that closes it; a
# record of a accepted into the window at wm = close - 1 (sessions: none, any joining record
# would move the close); a record late at wm = close (the boundary of the lateness rule)
BOUNDS: dict[str, tuple[Callable[[], WindowKind], int, int, int, int | None, int]] = {
    "tumbling": (lambda: windows.tumbling(1), T0, T0 + 1000, T0 + 1500, T0 + 999, T0 + 999),
    "session": (lambda: windows.session(0.3), T0 + 100, T0 + 100, T0 + 600, None, T0 + 400),
    "sliding": (lambda: windows.sliding(0.5), T0 - 400, T0 + 100, T0 + 300, T0 + 100, T0 + 100),
}


async def processed(handle: JobHandle, n: int) -> None:
    await wait_until(lambda: handle.status().stages[0].records_in == n, what=f"{n} records in")


@pytest.mark.parametrize("name", sorted(BOUNDS))
async def test_a_window_closes_when_the_watermark_reaches_its_close_and_not_before(
    name: str, rs_redis: Any, fast_options: MQOptions
) -> None:
    kind, start, end, close, accepted, late = BOUNDS[name]
    grace = 0.5 if name == "tumbling" else 0.2
    await topics(rs_redis, fast_options, "final", "late")
    job = Job(f"close-{name}", partitions=1)
    (source(job).window(kind(), grace=grace, late_to="late")
        .aggregate(**aggregation()).final().to("final"))  # fmt: skip

    def rec(i: int, key: str, ts: int) -> dict[str, Any]:
        return {"id": i, "k": key, "ts": ts, "v": i}

    # b moves the watermark to close - 1: nothing closes, a record can still join.
    await feed(rs_redis, fast_options, "in", [rec(0, "a", T0 + 100), rec(1, "b", close - 1)])
    async with running_job(job, rs_redis, fast_options, RUNTIME) as handle:
        await processed(handle, 2)
        if accepted is not None:
            await send(rs_redis, fast_options, "in", [rec(2, "a", accepted)])
        await processed(handle, 3 if accepted else 2)
        assert await results(rs_redis, fast_options, "final") == []
        await send(rs_redis, fast_options, "in", [rec(3, "b", close)])
        await processed(handle, 4 if accepted else 3)
        ids = [0, 2] if accepted else [0]
        assert await results(rs_redis, fast_options, "final") == [
            ("a", start, end, {"n": len(ids), "s": sum(ids), "c": ids})
        ]
        await send(rs_redis, fast_options, "in", [rec(4, "a", late)])
        await processed(handle, 5 if accepted else 4)
        status = handle.status().stages[0]
    assert status.late_records == 1
    assert await records(rs_redis, fast_options, "late") == [rec(4, "a", late)]
    assert len(await results(rs_redis, fast_options, "final")) == 1


async def test_windows_of_a_quiet_partition_close_after_idle_timeout_without_new_input(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    idle_s, grace_s = 1.0, 0.5
    await topics(rs_redis, fast_options, "tumbling", "session")
    job = Job("idle", partitions=1)
    src = source(job)
    (src.window(windows.tumbling(1), grace=grace_s, idle_timeout=idle_s)
        .aggregate(**aggregation()).final().to("tumbling"))  # fmt: skip
    (src.window(windows.session(0.3), grace=grace_s, idle_timeout=idle_s)
        .aggregate(**aggregation()).final().to("session"))  # fmt: skip
    recs = [{"id": i, "k": "a", "ts": T0 + 900 + 60 * i, "v": 1} for i in range(3)]
    await feed(rs_redis, fast_options, "in", recs[:2])
    async with running_job(job, rs_redis, fast_options, RUNTIME) as handle:
        await processed(handle, 2)
        await send(rs_redis, fast_options, "in", recs[2:])
        sent = time.monotonic()
        await processed(handle, 3)

        async def closed() -> bool:
            t = await results(rs_redis, fast_options, "tumbling")
            s = await results(rs_redis, fast_options, "session")
            return len(t) == 2 and len(s) == 1

        took = await wait_until(closed, timeout_s=10, what="idle windows closed")
        elapsed = time.monotonic() - sent
    # Both windows end within grace of the last record: a protocol bound, idle_timeout + grace
    # + one read's block, plus slack for a shared machine.
    bound = idle_s + grace_s + fast_options.block_ms / 1000
    assert idle_s - 0.05 <= elapsed < bound + 1.5, (elapsed, took)
    assert await results(rs_redis, fast_options, "tumbling") == [
        ("a", T0, T0 + 1000, {"n": 2, "s": 2, "c": [0, 1]}),
        ("a", T0 + 1000, T0 + 2000, {"n": 1, "s": 1, "c": [2]}),
    ]
    assert await results(rs_redis, fast_options, "session") == [
        ("a", T0 + 900, T0 + 1020, {"n": 3, "s": 3, "c": [0, 1, 2]}),
    ]
    print(f"idle close after {elapsed:.2f}s (bound {bound:.2f}s)")


async def test_sliding_windows_at_their_inclusive_bounds(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    # A later record size or size + 1 after another (a, b) makes the window just after the
    # earlier one; size + 2 after (c) it does not.
    recs = [
        {"id": i, "k": k, "ts": T0 + d, "v": 1}
        for i, (k, d) in enumerate(
            [("a", 0), ("a", 500), ("b", 0), ("b", 501), ("c", 0), ("c", 502)]
        )
    ]
    recs.append(closer(len(recs), T0 + 100_000))
    exp = ref.by_time(recs, lambda m: ref.sliding(m, 500), 0, 0, 0)
    assert ("a", T0 + 1, T0 + 501, {"n": 1, "s": 1, "c": [1]}) in exp.final
    await topics(rs_redis, fast_options, "final")
    await feed(rs_redis, fast_options, "in", recs)
    job = Job("bounds", partitions=1)
    source(job).window(windows.sliding(0.5)).aggregate(**aggregation()).final().to("final")
    async with running_job(job, rs_redis, fast_options, RUNTIME) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    final = await results(rs_redis, fast_options, "final")
    assert sorted(final, key=lambda w: w[:3]) == exp.final


async def test_closing_a_keys_session_leaves_its_later_sessions_open(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    # When a's first session closes (wm jumps to T0 + 2800), its second one ([T0 + 500]) still
    # has until T0 + 500 + gap + grace = T0 + 2900, so the record at T0 + 850 joins it.
    recs = [
        {"id": i, "k": k, "ts": T0 + d, "v": 1}
        for i, (k, d) in enumerate([("a", 0), ("a", 500), ("y", 2800), ("a", 850)])
    ]
    recs.append(closer(len(recs), T0 + 100_000))
    await topics(rs_redis, fast_options, "final")
    await feed(rs_redis, fast_options, "in", recs)
    job = Job("later", partitions=1)
    (source(job).window(windows.session(0.4), grace=2)
        .aggregate(**aggregation()).final().to("final"))  # fmt: skip
    one = RuntimeOptions(batch_size=1, retry_backoff_ms=10, forward_interval_ms=20)
    async with running_job(job, rs_redis, fast_options, one) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    assert sorted(await results(rs_redis, fast_options, "final"), key=lambda w: w[:3]) == [
        ("a", T0, T0, {"n": 1, "s": 1, "c": [0]}),
        ("a", T0 + 500, T0 + 850, {"n": 2, "s": 2, "c": [1, 3]}),
        ("y", T0 + 2800, T0 + 2800, {"n": 1, "s": 1, "c": [2]}),
    ]
