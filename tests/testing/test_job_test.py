"""JobTest: a job run against the session's server with a manual clock. Idle timeouts, wall
timers and state TTLs follow the clock and nothing else; settle() returns once everything sent
(and what follows from it in later stages) is processed; reads see every output; the same test
gives the same result every time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from redis_streaming import FiredTimer, InvalidArgument, Job, ProcessContext, agg, windows
from redis_streaming.testing import JobTest, ManualClock, job_test
from redis_streaming.testing.jobs import START_MS

JT = Callable[..., JobTest]


def counter(name: str = "words", ttl: float | None = None) -> Job:
    """Words in, a running count per word out, through a key_by (two stages)."""
    job = Job(name)
    (
        job.source("text", value_type=str)
        .flat_map(str.split)
        .key_by(lambda w: w)
        .stateful_map(lambda n, w: ((n or 0) + 1, f"{w}={(n or 0) + 1}"), name="n", ttl=ttl)
        .to("counts")
    )
    return job


def per_second(idle_timeout: float | None = 3, grace: float = 1) -> Job:
    """Tumbling one-second windows per key (grace 1 s): a count per window, late ones apart."""
    job = Job("clicks")
    (
        job.source("clicks", value_type=dict)
        .key_by(lambda c: c["page"])
        .window(windows.tumbling(1), grace=grace, idle_timeout=idle_timeout, late_to="late")
        .aggregate(agg.count())
        .final()
        .map(lambda r: {"page": r.key, "start": r.start - START_MS, "n": r.value})
        .to("per-second")
    )
    return job


def reminders() -> Job:
    """Each record sets a wall-clock timer a minute later (from the job's clock) and an
    event-time one a second after it; both emit when they fire, the record itself at once."""

    def on_record(ctx: ProcessContext, value: str) -> None:
        ctx.timers.at_wall_time(ctx.now_ms + 60_000, name="wall")
        ctx.timers.at_event_time(ctx.timestamp + 1000, name="event")
        ctx.emit(f"got {value}")

    def on_timer(ctx: ProcessContext, timer: FiredTimer) -> None:
        ctx.emit(f"{timer.domain} {ctx.key} {timer.at - START_MS}")

    job = Job("reminders")
    job.source("in", value_type=str).process(on_record, on_timer=on_timer).to("out")
    return job


def test_a_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock()
    assert clock.now_ms() == START_MS == 1_704_067_200_000  # 2024-01-01T00:00:00Z
    assert clock.advance(1.5) == START_MS + 1500
    assert clock.advance(timedelta(minutes=1)) == clock.now_ms() == START_MS + 61_500
    assert ManualClock(5).now_ms() == 5
    with pytest.raises(InvalidArgument, match="duration of 0 or more"):
        clock.advance(-1)
    with pytest.raises(InvalidArgument, match="epoch milliseconds"):
        ManualClock(1.5)  # type: ignore[arg-type]


async def test_outputs_of_a_two_stage_job_are_there_right_after_sending(rs_job_test: JT) -> None:
    async with rs_job_test(counter()) as t:
        await t.send("text", "a b a")
        assert await t.outputs("counts") == ["a=1", "b=1", "a=2"]
        await t.send("text", "b")
        assert await t.outputs("counts", keys=True) == [
            ("a", "a=1"), ("b", "b=1"), ("a", "a=2"), ("b", "b=2"),
        ]  # fmt: skip
        assert await t.state("n", "a") == 2
        assert await t.state_items("n") == {"a": 2, "b": 2}
        assert await t.state("n", "zzz") is None


async def test_outputs_on_several_partitions_are_all_read(rs_job_test: JT) -> None:
    async with rs_job_test(counter(), partitions=3) as t:
        words = [f"w{i}" for i in range(12)]
        await t.send("text", " ".join(words))
        got = await t.outputs("counts", keys=True)
        assert sorted(got) == sorted((w, f"{w}={1}") for w in words)
        assert len({t.keys.stream("counts", p) for p in range(3)}) == 3
        assert await t.state_items("n") == dict.fromkeys(words, 1)


async def test_an_idle_partition_closes_its_windows_when_the_clock_says_so(rs_job_test: JT) -> None:
    async with rs_job_test(per_second(idle_timeout=3)) as t:
        await t.send("clicks", {"page": "/"}, timestamp=START_MS + 100)
        await t.send("clicks", {"page": "/"}, timestamp=START_MS + 900)
        await t.send("clicks", {"page": "/a"}, timestamp=START_MS + 1200)
        await t.advance(wall=2.999)  # quiet for less than the idle timeout: nothing closes
        assert await t.outputs("per-second") == []
        await t.advance(wall=0.001)  # 3 s of quiet: the watermark is 1200 + 3000
        assert await t.outputs("per-second") == [
            {"page": "/", "start": 0, "n": 2}, {"page": "/a", "start": 1000, "n": 1},
        ]  # fmt: skip
        await t.send("clicks", {"page": "/"}, timestamp=START_MS + 500)  # its window has closed
        assert await t.outputs("late") == [{"page": "/"}]


async def test_event_time_moves_on_from_the_highest_watermark(rs_job_test: JT) -> None:
    async with rs_job_test(per_second(idle_timeout=None, grace=1)) as t:
        await t.send("clicks", {"page": "/"}, timestamp=START_MS + 300)
        await t.advance(wall=3600)  # no idle timeout: wall time closes nothing
        assert await t.outputs("per-second") == []
        await t.advance(event=1.699)  # watermark 1999: [0, 1000) closes at 1000 + grace
        assert await t.outputs("per-second") == []
        await t.advance(event=0.001)
        assert await t.outputs("per-second") == [{"page": "/", "start": 0, "n": 1}]
        await t.send("clicks", {"page": "/"}, timestamp=START_MS + 999)  # its window closed
        assert await t.outputs("late") == [{"page": "/"}]


async def test_event_time_before_any_record_starts_at_the_clock(rs_job_test: JT) -> None:
    async with rs_job_test(per_second(idle_timeout=None, grace=0)) as t:
        await t.advance(event=1)  # watermark START_MS + 1000: records before it are late
        await t.send("clicks", {"page": "/"}, timestamp=START_MS + 999)
        await t.send("clicks", {"page": "/"}, timestamp=START_MS + 1000)
        assert await t.outputs("late") == [{"page": "/"}]
        await t.advance(event=1)
        assert await t.outputs("per-second") == [{"page": "/", "start": 1000, "n": 1}]


async def test_wall_timers_fire_when_the_clock_reaches_them(rs_job_test: JT) -> None:
    async with rs_job_test(reminders()) as t:
        await t.send("in", "x", key="k", timestamp=START_MS)
        assert await t.outputs("out") == ["got x"]
        await t.advance(wall=59.999)
        assert await t.outputs("out") == ["got x"]
        await t.advance(wall=0.001)
        assert await t.outputs("out") == ["got x", "wall k 60000"]
        await t.advance(event=1)
        assert await t.outputs("out") == ["got x", "wall k 60000", "event k 1000"]


async def test_state_ttl_follows_the_clock(rs_job_test: JT) -> None:
    async with rs_job_test(counter("ttl", ttl=60)) as t:
        await t.send("text", "a")
        await t.advance(wall=59.999)
        assert await t.state("n", "a") == 1
        await t.send("text", "a")  # written again: 60 s from now
        await t.advance(wall=59.999)
        assert await t.state_items("n") == {"a": 2}
        await t.advance(wall=0.001)
        assert await t.state_items("n") == {}  # expired, though no commit has swept it yet
        await t.send("text", "a")  # read as absent (from the task's cache): counts from 1
        assert await t.outputs("counts") == ["a=1", "a=2", "a=1"]


async def test_the_same_test_gives_the_same_outputs_every_time(rs_server_url: str) -> None:
    """Records and timers interleave in the outputs as the batches fall: records sent between
    two settles are read in one batch, so the order is the same in every run."""
    runs = []
    for _ in range(20):
        async with job_test(reminders(), url=rs_server_url) as t:
            for i, key in enumerate("abcab"):
                await t.send("in", f"{key}{i}", key=key, timestamp=START_MS + 600 * i)
            await t.advance(wall=60)
            await t.send("in", "late", key="c", timestamp=START_MS)
            runs.append(await t.outputs("out"))
    assert runs == [runs[0]] * 20
    assert runs[0][:5] == ["got a0", "got b1", "got c2", "got a3", "got b4"]


async def test_dead_letters_name_their_reason(rs_job_test: JT) -> None:
    def check(value: dict[str, int]) -> dict[str, int]:
        if value["n"] < 0:
            raise ValueError("negative")
        return value

    job = Job("checked")
    job.source("in", value_type=dict).map(check).to("out")
    async with rs_job_test(job) as t:
        await t.send("in", {"n": 1})
        await t.send("in", b"\xff not json")
        await t.send("in", {"n": -1})
        assert await t.outputs("out") == [{"n": 1}]
        letters = await t.dead_letters()
        assert [(d.reason, d.error_type) for d in letters] == [
            ("undecodable", "DecodeError"), ("max_attempts", "ValueError"),
        ]  # fmt: skip
        assert letters[1].decoded() == {"n": -1}


async def test_send_takes_keys_timestamps_and_headers(rs_job_test: JT) -> None:
    job = Job("echo")
    job.source("in").process(lambda ctx, v: ctx.emit([ctx.key, ctx.timestamp - START_MS, v])).to(
        "out"
    )
    async with rs_job_test(job) as t:
        await t.send("in", "a", key="k", timestamp=datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC))
        t.clock.advance(2)
        await t.send("in", {"b": 1}, headers={"h": "v"})  # default: the clock's time
        assert await t.outputs("out") == [["k", 1000, "a"], [None, 2000, {"b": 1}]]
        raw = await t.redis.xrange(t.keys.stream("in", 0))
        assert raw[1][1][b"headers"] == b'{"h":"v"}'
        for bad, message in (
            ({"timestamp": 1.5}, "epoch milliseconds"),
            ({"timestamp": datetime(2024, 1, 1)}, "no time zone"),
            ({"key": 7}, "key must be a str"),
        ):
            with pytest.raises(InvalidArgument, match=message):
                await t.send("in", "x", **bad)
        with pytest.raises(InvalidArgument, match="cannot encode"):
            await t.send("in", object())


async def test_reads_refuse_what_the_job_does_not_have(rs_job_test: JT) -> None:
    async with rs_job_test(counter()) as t:
        with pytest.raises(
            InvalidArgument, match=r"no topic 'count'; the job writes to \['counts'\]"
        ):
            await t.outputs("count")
        with pytest.raises(InvalidArgument, match=r"no state store 'm'; it has \['n'\]"):
            await t.state("m", "a")
        with pytest.raises(InvalidArgument, match="needs wall="):
            await t.advance()
        with pytest.raises(InvalidArgument, match="watermark_ms must be"):
            t.handle.advance_watermark(1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="pass build_job"):
        JobTest(counter)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="partitions must be"):
        JobTest(counter(), partitions=0)
    with pytest.raises(InvalidArgument, match="standalone server"):
        await JobTest(counter(), url="redis+cluster://127.0.0.1:7000/0").start()


async def test_settle_names_what_is_still_pending_when_it_times_out(rs_job_test: JT) -> None:
    gate = asyncio.Event()

    async def held(value: str) -> str:
        await gate.wait()
        return value

    job = Job("held")
    job.source("in", value_type=str).map(held).to("out")
    async with rs_job_test(job) as t:
        await t.send("in", "a")
        with pytest.raises(TimeoutError, match=r"held.s0 partition 0: 1 entries in progress"):
            await t.settle(timeout_s=0.3)
        gate.set()
        assert await t.outputs("out") == ["a"]


async def test_the_namespace_is_deleted_afterwards(rs_job_test: JT, rs_redis: Any) -> None:
    async with rs_job_test(counter()) as t:
        await t.send("text", "a")
        await t.settle()
        assert [k async for k in rs_redis.scan_iter(match=f"{t.namespace}:*")]
    assert [k async for k in rs_redis.scan_iter(match=f"{t.namespace}:*")] == []


async def test_without_a_url_a_private_server_runs_for_the_test() -> None:
    async with job_test(counter()) as t:
        server = t._server
        await t.send("text", "a")
        assert await t.outputs("counts") == ["a=1"]
        assert server.running
    assert not server.running
    await asyncio.sleep(0)
