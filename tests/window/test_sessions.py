"""Session windows merge: a record that bridges two sessions of its key joins them into one,
whose aggregate (count, sum, collect in event-time order) is that of all their records."""

from __future__ import annotations

from typing import Any

import pytest

from redis_streaming import Job, MQOptions, windows
from tests.runtime.support import running_job, wait_idle
from tests.window import reference as ref
from tests.window.support import (
    RUNTIME,
    T0,
    aggregation,
    closer,
    feed,
    results,
    source,
    topics,
)


@pytest.mark.cluster
async def test_a_record_bridging_two_sessions_merges_them(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    def rec(i: int, key: str, ts: int) -> dict[str, Any]:
        return {"id": i, "k": key, "ts": ts, "v": 10 * i + 1}

    recs = [
        rec(0, "a", T0), rec(1, "a", T0 + 200),  # session 1: [T0, T0+200]
        rec(2, "b", T0 + 300),
        rec(3, "a", T0 + 900), rec(4, "a", T0 + 1000),  # session 2: [T0+900, T0+1000]
        rec(5, "a", T0 + 1700),  # session 3
        rec(6, "a", T0 + 500),  # within the gap of 1 and 2: bridges them
        rec(7, "a", T0 + 1350),  # bridges the merged session and 3
        rec(8, "b", T0 + 800),  # b's own, not bridged
        closer(9, T0 + 100_000),
    ]  # fmt: skip
    exp = ref.by_time(recs, lambda m: ref.sessions(m, 400), 400, 2000, 0)
    assert exp.late == []
    assert ("a", T0, T0 + 1700, ref.summary([r for r in recs if r["k"] == "a"])) in exp.final
    await topics(rs_redis, fast_options, "final", "current")
    await feed(rs_redis, fast_options, "in", recs)
    job = Job("merge", partitions=1)
    src = source(job)
    kind = windows.session(0.4)
    src.window(kind, grace=2).aggregate(**aggregation()).final().to("final")
    src.window(kind, grace=2).aggregate(**aggregation()).current().to("current")
    async with running_job(job, rs_redis, fast_options, RUNTIME) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        status = handle.status().stages[0]
    final = await results(rs_redis, fast_options, "final")
    assert sorted(final, key=lambda w: w[:3]) == exp.final
    merged = {"n": 7, "s": 7 + 10 * 26, "c": [0, 1, 6, 3, 4, 7, 5]}
    assert sorted(final, key=lambda w: w[:3])[0] == ("a", T0, T0 + 1700, merged)
    current = await results(rs_redis, fast_options, "current")
    assert current == exp.current
    assert current[6] == ("a", T0, T0 + 1000, {"n": 5, "s": 5 + 10 * 14, "c": [0, 1, 6, 3, 4]})
    # Sessions opened: a three times, b twice, z once; merges open none.
    assert status.windows_opened == 2 * 6
    assert status.windows_closed == 2 * 3
