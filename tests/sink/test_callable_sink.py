"""Sinks written through ``write(batch)`` (CallableSink and any object with it): every record
once per committed batch, in entry order, with the task's name and the batch's last entry id;
a failing sink is retried (never dead-lettered); a batch that did not commit is written again
(at-least-once); a slow sink holds the stage's reading back (backpressure)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from redis_streaming import CallableSink, Job, MQOptions, RuntimeOptions, SinkBatch, SinkRecord
from redis_streaming.errors import InvalidArgument
from redis_streaming.mq.keys import Keys
from redis_streaming.sink.base import stream_id
from tests.runtime.support import RUNTIME, feed, running_job, wait_idle


class Recorder:
    """A sink keeping every batch it was given."""

    def __init__(self) -> None:
        self.batches: list[SinkBatch] = []

    async def write(self, batch: SinkBatch) -> None:
        self.batches.append(batch)

    @property
    def records(self) -> list[SinkRecord]:
        return [r for b in self.batches for r in b.records]


async def test_every_record_reaches_the_sink_in_order_with_its_entry_id(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "in", [(f"k{n % 5}", n) for n in range(300)])
    sink = Recorder()
    job = Job("cs")
    job.source("in", value_type=int).filter(lambda n: n % 10 != 9).map(lambda n: n * 2).sink(sink)
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    assert sorted(r.value for r in sink.records) == [n * 2 for n in range(300) if n % 10 != 9]
    for batch in sink.batches:
        assert (batch.job, batch.stage, batch.topic) == ("cs", "s0", "in")
        ids = [stream_id(r.entry_id or "") for r in batch.records]
        assert ids == sorted(ids)
        assert batch.last_id is not None
        assert ids[-1] <= stream_id(batch.last_id)
        assert all(r.key is not None and r.ts > 0 for r in batch.records)
    for p in (0, 1):  # a partition's batches in order, each record once
        ids = [r.entry_id for b in sink.batches if b.partition == p for r in b.records]
        assert ids == sorted(set(ids), key=lambda i: stream_id(i or ""))
    assert len(sink.records) == 270


async def test_a_failing_sink_gets_the_batch_again_and_nothing_is_dead_lettered(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "in", list(range(40)), partitions=1)
    got: list[int] = []
    failures = 0

    def flaky(records: list[SinkRecord]) -> None:
        nonlocal failures
        if failures < 4:
            failures += 1
            raise ConnectionError("the database is down")
        got.extend(r.value for r in records)

    job = Job("flaky")
    job.source("in", value_type=int).sink(CallableSink(flaky))
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        status = handle.status().stages[0]
    assert sorted(got) == list(range(40))
    assert len(got) == 40
    assert status.dead_lettered == 0
    assert status.last_error == "ConnectionError: the database is down"


async def test_a_record_whose_function_fails_is_dead_lettered_and_not_sunk(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "in", list(range(30)), partitions=1)

    def check(n: int) -> int:
        if n == 13:
            raise ValueError("unlucky")
        return n

    sink = Recorder()
    job = Job("bad")
    source = job.source("in", value_type=int)
    source.sink(sink)  # reached before the failing function: taken back with the record
    source.map(check).sink(CallableSink(lambda records: None))
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        assert handle.status().stages[0].dead_lettered == 1
    assert [r.value for r in sink.records] == [n for n in range(30) if n != 13]


async def test_a_batch_that_did_not_commit_is_written_again(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    """The process stops (cancelled) while the sink writes: the batch stays pending, and the
    next run writes it again: at-least-once."""
    await feed(rs_redis, fast_options, "in", list(range(10)), partitions=1)
    entered, hold = asyncio.Event(), asyncio.Event()
    seen: list[list[str | None]] = []

    async def slow(records: list[SinkRecord]) -> None:
        seen.append([r.entry_id for r in records])
        entered.set()
        await hold.wait()

    job = Job("again")
    job.source("in", value_type=int).sink(CallableSink(slow))
    async with running_job(job, rs_redis, fast_options) as handle:
        await asyncio.wait_for(entered.wait(), 10)
        await handle.stop(timeout_s=0.1)
    hold.set()
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    assert len(seen) >= 2
    assert seen[0] == seen[1]
    assert len(seen[0]) == 10


async def test_a_slow_sink_holds_the_stages_reading_back(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    """While the sink is stuck on a batch, the stage reads at most one batch more (the read
    pipelined with a commit): the rest stays unread in the partition (the group's lag)."""
    batch, total = 10, 400
    await feed(rs_redis, fast_options, "in", list(range(total)), partitions=1)
    entered, hold = asyncio.Event(), asyncio.Event()
    calls = 0

    async def stuck(records: list[SinkRecord]) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            entered.set()
            await hold.wait()

    job = Job("slow")
    job.source("in", value_type=int).sink(CallableSink(stuck))
    runtime = RuntimeOptions(batch_size=batch, retry_backoff_ms=10)
    stream = Keys(fast_options.namespace).stream("in", 0)
    async with running_job(job, rs_redis, fast_options, runtime) as handle:
        await asyncio.wait_for(entered.wait(), 10)
        # Nothing to wait for: the point is that nothing happens while the sink is stuck.
        for _ in range(5):
            await asyncio.sleep(0.1)
            (group,) = await rs_redis.xinfo_groups(stream)
            assert group["pending"] <= batch
            assert group["lag"] >= total - 4 * batch
        assert handle.status().stages[0].records_in == 2 * batch
        hold.set()
        await wait_idle(rs_redis, fast_options, handle)
    assert calls == total // batch


def test_sink_takes_a_sink() -> None:
    with pytest.raises(InvalidArgument, match="CallableSink"):
        Job("j").source("in").sink(print)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        CallableSink("not a function")  # type: ignore[arg-type]
    assert RUNTIME.batch_size == 50
