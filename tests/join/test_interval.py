"""Interval joins against a brute-force reference: seeded left and right records, out of order
within the grace, joined inner, left and outer in one job, with one partition per topic (so the
join stage's watermark sees the input in one order), a grace larger than the input's time span
(no record is late) and an ``idle_timeout`` that closes everything once the input is in. Then
the rules one at a time: a record with ``ts + grace <= watermark`` is dropped and counted, and
a left record is kept until the watermark passes ``ts + after + grace``."""

from __future__ import annotations

from typing import Any

import pytest

from redis_streaming import Job, JobHandle, MQOptions, StateReader
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.wire.codec import decode_payload, parse_fields
from tests.helpers import wait_until
from tests.join.intervals import Output, counted, joined, sides
from tests.join.reference import T0
from tests.join.support import RUNTIME, append, create, stage_of, wait_committed
from tests.runtime.support import running_job, wait_idle

HOWS = ("inner", "left", "outer")
BEFORE_MS, AFTER_MS = 50, 80


def ts_of(value: dict[str, Any]) -> int:
    return int(value["ts"])


async def outputs(redis: Any, options: MQOptions, topic: str) -> list[Output]:
    """``(key, value, event time)`` of each entry of the one-partition ``topic``."""
    found: list[Output] = []
    for _, fields in await redis.xrange(Keys(options.namespace).stream(topic, 0)):
        parsed = parse_fields(fields)
        found.append((parsed.key, decode_payload(parsed.raw, parsed.content_type), parsed.ts))
    return found


def late(handle: JobHandle, job: str, stage: str) -> int:
    return stage_of(handle, f"{job}.{stage}.repartition").late_records


@pytest.mark.cluster
async def test_interval_joins_emit_what_a_brute_force_join_does(
    rs_redis: Any, rs_options: MQOptions
) -> None:
    left_in, right_in = sides(18, keys=6, per_side=60, span_ms=1000, step_ms=10)
    expected = {
        how: joined(left_in, right_in, before=BEFORE_MS, after=AFTER_MS, how=how) for how in HOWS
    }
    unmatched_left = sum(n for (_, v, _), n in expected["left"].items() if v[1] is None)
    unmatched_right = sum(n for (_, v, _), n in expected["outer"].items() if v[0] is None)
    assert sum(expected["inner"].values()) >= 50
    assert unmatched_left >= 10
    assert unmatched_right >= 10
    await create(rs_redis, rs_options, a=1, b=1, **{f"out-{how}": 1 for how in HOWS})
    await append(rs_redis, rs_options, "a", 1, left_in)
    await append(rs_redis, rs_options, "b", 1, right_in)

    job = Job("intervals", partitions=1)
    left = job.source("a", value_type=dict, timestamp=ts_of)
    right = job.source("b", value_type=dict, timestamp=ts_of)
    for how in HOWS:
        left.join_interval(
            right, before=BEFORE_MS / 1000, after=AFTER_MS / 1000, how=how, grace=3,
            idle_timeout=0.5, name=f"j{how}",
        ).to(f"out-{how}")  # fmt: skip
    async with running_job(job, rs_redis, rs_options, RUNTIME) as handle:
        for how in HOWS:
            total = sum(expected[how].values())

            async def complete(how: str = how, total: int = total) -> bool:
                return len(await outputs(rs_redis, rs_options, f"out-{how}")) >= total

            await wait_until(complete, 30, f"{total} outputs of the {how} join")
        await wait_idle(rs_redis, rs_options, handle)
        assert [late(handle, "intervals", f"j{how}") for how in HOWS] == [0, 0, 0]
        reader = StateReader(rs_redis, rs_options)
        for how in HOWS:
            # Every record expired: the buffers are gone (and their timers with them).
            assert await reader.items("intervals", f"join-j{how}") == {}, how
    for how in HOWS:
        found = counted(await outputs(rs_redis, rs_options, f"out-{how}"))
        assert found == expected[how], how


async def test_a_late_record_is_dropped_and_counted(rs_redis: Any, rs_options: MQOptions) -> None:
    await create(rs_redis, rs_options, a=1, b=1, out=1)
    job = Job("late", partitions=1)
    left = job.source("a", value_type=dict, timestamp=ts_of)
    right = job.source("b", value_type=dict, timestamp=ts_of)
    left.join_interval(right, before=2, after=0, grace=1, name="j").to("out")
    async with running_job(job, rs_redis, rs_options, RUNTIME) as handle:
        await append(rs_redis, rs_options, "a", 1, [("k", {"id": "l", "ts": T0}, T0)])
        await wait_committed(handle, "late.j.repartition", 1)  # the watermark is T0
        # Both are within the left's bounds [T0 - 2 s, T0]; the first has ts + grace == T0.
        right_in = [
            ("k", {"id": "late", "ts": T0 - 1000}, T0 - 1000),
            ("k", {"id": "ok", "ts": T0 - 999}, T0 - 999),
        ]
        await append(rs_redis, rs_options, "b", 1, right_in)
        await wait_committed(handle, "late.j.repartition", 3)
        await wait_idle(rs_redis, rs_options, handle)
        assert late(handle, "late", "j") == 1
    assert await outputs(rs_redis, rs_options, "out") == [
        ("k", [{"id": "l", "ts": T0}, {"id": "ok", "ts": T0 - 999}], T0)
    ]


async def test_a_left_record_waits_for_its_after_bound_plus_grace(
    rs_redis: Any, rs_options: MQOptions
) -> None:
    """A right record within the left's ``after`` pairs with it, also once the watermark has
    passed the left's ``ts + before + grace``; an unmatched left comes out once, at expiry."""
    await create(rs_redis, rs_options, a=1, b=1, out=1)
    job = Job("bounds", partitions=1)
    left = job.source("a", value_type=dict, timestamp=ts_of)
    right = job.source("b", value_type=dict, timestamp=ts_of)
    left.join_interval(right, before=0, after=1, how="left", name="j").to("out")
    topic = "bounds.j.repartition"
    async with running_job(job, rs_redis, rs_options, RUNTIME) as handle:
        await append(rs_redis, rs_options, "a", 1, [("k", {"id": "l1", "ts": T0}, T0)])
        await wait_committed(handle, topic, 1)
        # Another key moves the partition's watermark to T0 + 500: past l1's ts + before.
        await append(rs_redis, rs_options, "a", 1, [("m", {"id": "l2", "ts": T0 + 500}, T0 + 500)])
        await wait_committed(handle, topic, 2)
        await append(rs_redis, rs_options, "b", 1, [("k", {"id": "r1", "ts": T0 + 800}, T0 + 800)])
        await wait_committed(handle, topic, 3)
        # T0 + 1500 expires l1 (matched: nothing more) and l2 (unmatched: [l2, None]).
        await append(
            rs_redis, rs_options, "b", 1, [("z", {"id": "r2", "ts": T0 + 1500}, T0 + 1500)]
        )
        await wait_committed(handle, topic, 4)
        await wait_idle(rs_redis, rs_options, handle)
        assert late(handle, "bounds", "j") == 0
    assert await outputs(rs_redis, rs_options, "out") == [
        ("k", [{"id": "l1", "ts": T0}, {"id": "r1", "ts": T0 + 800}], T0 + 800),
        ("m", [{"id": "l2", "ts": T0 + 500}, None], T0 + 500),
    ]
