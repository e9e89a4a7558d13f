"""Bad input and bad windows: a record whose event time cannot be had is dead-lettered
(``undecodable``) while the rest windows on; impossible window definitions and aggregators that
cannot merge where merging is needed are refused when the job is built."""

from __future__ import annotations

from typing import Any

import pytest

from redis_streaming import DeadLetters, InvalidArgument, Job, MQOptions, agg, windows
from redis_streaming.window import WindowKind
from tests.runtime.support import running_job, wait_idle
from tests.window.support import RUNTIME, T0, aggregation, closer, feed, results, source, topics


async def test_a_record_without_a_usable_event_time_is_dead_lettered(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    good = [{"id": 0, "k": "a", "ts": T0, "v": 1}, {"id": 4, "k": "a", "ts": T0 + 10, "v": 2}]
    bad = [
        {"id": 1, "k": "x", "v": 0},  # the extractor raises (no ts)
        {"id": 2, "k": "y", "ts": "soon", "v": 0},  # not a number
        {"id": 3, "k": "w", "ts": None, "v": 0},
    ]
    await topics(rs_redis, fast_options, "final")
    await feed(rs_redis, fast_options, "in", [good[0], *bad, good[1], closer(5, T0 + 10_000)])
    job = Job("badts", partitions=1)
    source(job).window(windows.tumbling(1)).aggregate(**aggregation()).final().to("final")
    async with running_job(job, rs_redis, fast_options, RUNTIME) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        assert handle.status().stages[0].dead_lettered == 3
    assert await results(rs_redis, fast_options, "final") == [
        ("a", T0, T0 + 1000, {"n": 2, "s": 3, "c": [0, 4]})
    ]
    letters = {d.key: d for d in await DeadLetters(rs_redis, fast_options).list("in")}
    assert set(letters) == {"w", "x", "y"}
    assert {d.reason for d in letters.values()} == {"undecodable"}
    assert "event time could not be read" in letters["x"].error
    assert "KeyError" in letters["x"].error
    assert "event time" in letters["y"].error
    assert "'soon'" in letters["y"].error
    assert "event time" in letters["w"].error


class NoMerge:
    """An aggregator that cannot merge its states."""

    mergeable = False

    def initial(self) -> int:
        return 0

    def add(self, state: int, value: Any) -> int:
        return state + 1

    def merge(self, a: int, b: int) -> int:
        raise NotImplementedError

    def result(self, state: int) -> int:
        return state


def test_impossible_windows_are_refused_when_the_job_is_built() -> None:
    for make in (
        lambda: windows.tumbling(0),
        lambda: windows.tumbling(-1),
        lambda: windows.hopping(1, 2),  # slide > size
        lambda: windows.hopping(1, 0),
        lambda: windows.sliding(0),
        lambda: windows.session(0),
        lambda: windows.session(-0.5),
        lambda: windows.count(0),
        lambda: windows.count(2, 3),
        lambda: windows.count(1.5),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidArgument):
            make()
    stream = Job("bad", partitions=1).source("in")
    with pytest.raises(InvalidArgument):
        stream.window(windows.tumbling(1), grace=-1)
    with pytest.raises(InvalidArgument):
        stream.window(windows.tumbling(1), max_out_of_orderness=-1)
    with pytest.raises(InvalidArgument):
        stream.window(windows.tumbling(1), idle_timeout=0)
    with pytest.raises(InvalidArgument):
        stream.window(windows.tumbling(1)).aggregate()  # no aggregator


def test_merging_windows_refuse_an_aggregator_that_cannot_merge() -> None:
    stream = Job("merge", partitions=1).source("in")
    merging: tuple[WindowKind, ...] = (windows.session(1), windows.sliding(1))
    for kind in merging:
        with pytest.raises(InvalidArgument, match="merge"):
            stream.window(kind).aggregate(NoMerge())
        with pytest.raises(InvalidArgument, match="merge"):
            stream.window(kind).aggregate(n=agg.count(), odd=NoMerge())
    for kind in (windows.tumbling(1), windows.hopping(2, 1), windows.count(3)):
        stream.window(kind).aggregate(NoMerge())  # never merges: accepted
