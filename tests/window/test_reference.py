"""Every window kind against a brute-force reference: seeded out-of-order input on several keys
(times moved back by up to a few windows, some far-late records), grace, max out-of-orderness,
batches of 7 cutting through it. ``.final()`` emits each closed window exactly once with the
reference's aggregate, ``.current()`` the running aggregates after each record, late records are
counted and go to ``late_to``, and nothing else is emitted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from redis_streaming import Job, MQOptions, windows
from redis_streaming.window import WindowKind
from tests.runtime.support import running_job, wait_idle
from tests.window import reference as ref
from tests.window.support import (
    RUNTIME,
    aggregation,
    feed,
    generate,
    records,
    results,
    source,
    topics,
)


@dataclass(frozen=True)
class Case:
    """One window kind with its options, its input's shape and its reference."""

    kind: Callable[[], WindowKind]
    grace_ms: int
    ooo_ms: int
    jitter: int  # how far back times move (a few windows)
    far: int  # how far back the far-late records move
    reference: Callable[[list[ref.Rec]], ref.Expected]


CASES = {
    "tumbling": Case(
        lambda: windows.tumbling(1), 300, 0, 3000, 10_000,
        lambda rs: ref.hopping(rs, 1000, 1000, 300, 0),
    ),
    "hopping": Case(
        lambda: windows.hopping(1, 0.25), 200, 100, 2000, 10_000,
        lambda rs: ref.hopping(rs, 1000, 250, 200, 100),
    ),
    "sliding": Case(
        lambda: windows.sliding(0.5), 0, 0, 1500, 5_000,
        lambda rs: ref.by_time(rs, lambda m: ref.sliding(m, 500), 0, 0, 0),
    ),
    "session": Case(
        lambda: windows.session(0.3), 200, 100, 1500, 5_000,
        lambda rs: ref.by_time(rs, lambda m: ref.sessions(m, 300), 300, 200, 100),
    ),
    "count": Case(
        lambda: windows.count(4, 2), 0, 0, 1500, 5_000,
        lambda rs: ref.count(rs, 4, 2),
    ),
}  # fmt: skip
SEEDS = {"tumbling": 1, "hopping": 2, "sliding": 3, "session": 4, "count": 5}


async def check_against_reference(name: str, redis: Any, options: MQOptions) -> None:
    case = CASES[name]
    recs = generate(SEEDS[name], 150, step=90, jitter=case.jitter, far=case.far)
    exp = case.reference(recs)
    if name != "count":  # the input exercises lateness and closes
        assert len(exp.late) >= 5
        assert len(exp.final) >= 10
    await feed(redis, options, "in", recs)
    await topics(redis, options, "final", "current", "late")
    job = Job(f"ref-{name}", partitions=1)
    src = source(job)
    grace, ooo = case.grace_ms / 1000, case.ooo_ms / 1000
    (src.window(case.kind(), grace=grace, max_out_of_orderness=ooo, late_to="late")
        .aggregate(**aggregation()).final().to("final"))  # fmt: skip
    (src.window(case.kind(), grace=grace, max_out_of_orderness=ooo)
        .aggregate(**aggregation()).current().to("current"))  # fmt: skip
    async with running_job(job, redis, options, RUNTIME) as handle:
        await wait_idle(redis, options, handle)
        status = handle.status().stages[0]
    assert status.records_in == len(recs)
    final = await results(redis, options, "final")
    assert sorted(final, key=lambda w: w[:3]) == exp.final  # each window once, right value
    assert await results(redis, options, "current") == exp.current
    assert await records(redis, options, "late") == exp.late
    assert status.late_records == 2 * len(exp.late)  # both window operators count them
    assert status.windows_closed == 2 * len(exp.final)  # both close them


@pytest.mark.parametrize("name", ["hopping", "sliding", "session", "count"])
async def test_windows_equal_the_brute_force_reference(
    name: str, rs_redis: Any, fast_options: MQOptions
) -> None:
    await check_against_reference(name, rs_redis, fast_options)


@pytest.mark.cluster
async def test_tumbling_windows_equal_the_brute_force_reference(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await check_against_reference("tumbling", rs_redis, fast_options)
