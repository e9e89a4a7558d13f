"""The job catalogue: every running job is registered with its shape; describe reads each
partition's owner, frontier, watermark and lag and each store's size from Redis; reset refuses
while any instance runs the job, and afterwards the job starts again from nothing."""

from __future__ import annotations

from typing import Any

import pytest

from redis_streaming import (
    Job,
    JobCatalog,
    JobNotFound,
    JobRunning,
    MQOptions,
    StateReader,
    agg,
    windows,
)
from redis_streaming.mq.keys import Keys
from tests.runtime.support import feed, read, running_job, send, topic, wait_idle
from tests.runtime.test_handle import renewed


def counter(state: int | None, word: str) -> tuple[int, str]:
    n = (state or 0) + 1
    return n, f"{word}={n}"


def count_job() -> Job:
    job = Job("cat")
    words = job.source("words", value_type=str).key_by(lambda w: w)
    words.stateful_map(counter, name="n").to("counts")
    return job


async def test_describe_shows_progress_that_agrees_with_redis(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "words", [("a", "a"), ("b", "b"), ("a", "a")])
    await topic(rs_redis, fast_options, "counts")
    catalog = JobCatalog(rs_redis, fast_options)
    async with running_job(count_job(), rs_redis, fast_options, consumer_id="c1") as handle:
        await wait_idle(rs_redis, fast_options, handle)
        assert await catalog.names() == ["cat"]
        d = await catalog.describe("cat")
        assert d.running
        assert d.owners == ["c1"]
        assert [(s.id, s.topic, s.internal) for s in d.stages] == [
            ("s0", "words", False),
            ("s1", "cat.s1.repartition", True),
        ]
        source, counting = d.stages
        assert source.outputs == ["cat.s1.repartition"]
        assert counting.outputs == ["counts"]
        assert all(p.owner == "c1" and p.lag == 0 and p.pending == 0 for p in source.partitions)
        frontier = {p.partition: p.frontier for p in source.partitions}
        for p, last in frontier.items():  # the frontier is the partition's last entry
            entries = await rs_redis.xrevrange(
                Keys(fast_options.namespace).stream("words", p), count=1
            )
            assert last == (entries[0][0].decode() if entries else None)
        [store] = counting.stores
        assert store.name == "n"
        assert store.keys == 2
        assert store.bytes > 0
        assert store.keys == len(await StateReader(rs_redis, fast_options).items("cat", "n"))
    d = await catalog.describe("cat")
    assert not d.running
    assert d.owners == []


async def test_lag_counts_what_the_stage_has_not_read(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "words", [("a", "a")], partitions=1)
    await topic(rs_redis, fast_options, "counts")
    catalog = JobCatalog(rs_redis, fast_options)
    async with running_job(count_job(), rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        handle.pause()
        await renewed(rs_redis, fast_options, "cat.s0")  # a read in progress has ended since
        await send(rs_redis, fast_options, "words", [("b", "b"), ("c", "c")])
        d = await catalog.describe("cat")
        assert d.stages[0].lag == 2


async def test_watermark_is_the_committed_event_time(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    job = Job("wm")
    (
        job.source("clicks", timestamp=lambda v: v["ts"])
        .key_by(lambda v: v["page"])
        .window(windows.tumbling(60), max_out_of_orderness=1.0)
        .aggregate(n=agg.count())
        .final()
        .to("per-minute")
    )
    await feed(
        rs_redis,
        fast_options,
        "clicks",
        [("p", {"page": "p", "ts": 10_000}), ("p", {"page": "p", "ts": 25_000})],
        partitions=1,
    )
    await topic(rs_redis, fast_options, "per-minute")
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        d = await JobCatalog(rs_redis, fast_options).describe("wm")
        windowed = d.stages[-1]
        assert [p.watermark for p in windowed.partitions if p.watermark is not None] == [24_000]


async def test_reset_refuses_while_running_then_starts_from_nothing(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "words", [("a", "a"), ("a", "a")])
    await topic(rs_redis, fast_options, "counts")
    catalog = JobCatalog(rs_redis, fast_options)
    async with running_job(count_job(), rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        with pytest.raises(JobRunning, match="stop every instance"):
            await catalog.reset("cat")
        assert await StateReader(rs_redis, fast_options).items("cat", "n") == {"a": 2}
    reset = await catalog.reset("cat")
    assert reset.groups_destroyed > 0
    assert reset.keys_deleted > 0
    assert await StateReader(rs_redis, fast_options).items("cat", "n") == {}
    repartition = Keys(fast_options.namespace).stream("cat.s1.repartition", 0)
    assert await rs_redis.xlen(repartition) == 0
    async with running_job(count_job(), rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        # read again from the start, counted again from zero: a=1, a=2 twice in the output
        assert await StateReader(rs_redis, fast_options).items("cat", "n") == {"a": 2}
    outputs = [v for _, v in await read(rs_redis, fast_options, "counts")]
    assert sorted(outputs) == ["a=1", "a=1", "a=2", "a=2"]


async def test_unknown_job_is_a_clear_error(rs_redis: Any, fast_options: MQOptions) -> None:
    with pytest.raises(JobNotFound, match="known jobs: none"):
        await JobCatalog(rs_redis, fast_options).describe("nope")
