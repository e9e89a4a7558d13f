"""The job handle: pause keeps the leases and processes nothing until resume, status tells what
runs, stop ends gracefully (the batch in progress commits, or stays pending when it overruns;
leases are released), and two handles of one job share its partitions exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from redis_streaming import Job, JobState, MQOptions, StateReader
from redis_streaming.mq.keys import Keys
from redis_streaming.runtime import handle as handle_module
from tests.helpers import wait_until
from tests.runtime.support import feed, read, running_job, send, topic, wait_idle, wait_outputs


def counter(state: int | None, word: str) -> tuple[int, str]:
    n = (state or 0) + 1
    return n, f"{word}={n}"


def count_job(name: str = "h") -> Job:
    job = Job(name)
    job.source("words", value_type=str).stateful_map(counter, name="n").to("counts")
    return job


async def lease_ttl_ms(redis: Any, options: MQOptions, group: str, partition: int = 0) -> int:
    return int(await redis.pttl(Keys(options.namespace).lease("words", partition, group)))


async def renewed(redis: Any, options: MQOptions, group: str) -> None:
    """Wait until the lease of ``words`` partition 0 is renewed (its TTL goes up)."""
    last = await lease_ttl_ms(redis, options, group)

    async def up() -> bool:
        nonlocal last
        now = await lease_ttl_ms(redis, options, group)
        went_up, last = now > last, now
        return went_up

    await wait_until(up, what="a lease renewal")


async def blocked_clients(redis: Any) -> int:
    return int((await redis.info("clients"))["blocked_clients"])


async def test_pause_keeps_the_leases_and_processes_nothing_until_resume(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "words", [("a", "a")], partitions=1)
    await topic(rs_redis, fast_options, "counts")
    async with running_job(count_job(), rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        handle.pause()
        assert handle.status().state is JobState.PAUSED
        await renewed(rs_redis, fast_options, "h.s0")  # a read in progress has ended since
        await wait_until(lambda: _zero(blocked_clients(rs_redis)), what="no read waiting")
        await send(rs_redis, fast_options, "words", [("a", "a"), ("b", "b")])
        await renewed(rs_redis, fast_options, "h.s0")
        await renewed(rs_redis, fast_options, "h.s0")  # leases kept, a second later: nothing
        assert len(await read(rs_redis, fast_options, "counts")) == 1
        stream = Keys(fast_options.namespace).stream("words", 0)
        assert [g["lag"] for g in await rs_redis.xinfo_groups(stream)] == [2]
        assert handle.status().stages[0].owned_partitions == [0]
        handle.resume()
        assert handle.status().state is JobState.RUNNING
        await wait_idle(rs_redis, fast_options, handle)
        status = handle.status()
    assert sorted(await read(rs_redis, fast_options, "counts")) == [
        ("a", "a=1"), ("a", "a=2"), ("b", "b=1"),
    ]  # fmt: skip
    (stage,) = status.stages
    assert (status.name, stage.group, stage.topic) == ("h", "h.s0", "words")
    assert (stage.records_in, stage.records_out, stage.dead_lettered) == (3, 3, 0)
    assert stage.batches >= 2
    assert stage.last_commit_ms is not None
    assert stage.last_error is None
    assert stage.store_keys == {"n": 2}
    assert handle.status().state is JobState.STOPPED


async def test_a_pause_holds_what_the_waiting_read_returns(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "words", [("a", "a")], partitions=1)
    await topic(rs_redis, fast_options, "counts")
    async with running_job(count_job(), rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        await wait_until(lambda: _one(blocked_clients(rs_redis)), what="the task's read waiting")
        handle.pause()  # while its read waits: what the read returns is held, not processed
        await send(rs_redis, fast_options, "words", [("b", "b")])
        stream = Keys(fast_options.namespace).stream("words", 0)

        async def delivered() -> bool:  # the waiting read took it
            return [g["lag"] for g in await rs_redis.xinfo_groups(stream)] == [0]

        await wait_until(delivered, what="the read to return the entry")
        await renewed(rs_redis, fast_options, "h.s0")
        await renewed(rs_redis, fast_options, "h.s0")  # a second later: still nothing
        assert len(await read(rs_redis, fast_options, "counts")) == 1
        assert [g["pending"] for g in await rs_redis.xinfo_groups(stream)] == [1]
        handle.resume()
        await wait_idle(rs_redis, fast_options, handle)
    assert sorted(await read(rs_redis, fast_options, "counts")) == [("a", "a=1"), ("b", "b=1")]


async def _one(value: Any) -> bool:
    return await value == 1


async def _zero(value: Any) -> bool:
    return await value == 0


async def test_stop_lets_the_batch_in_progress_commit_and_releases_the_leases(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "words", [("a", "a"), ("b", "b")], partitions=1)
    await topic(rs_redis, fast_options, "counts")
    entered, gate = asyncio.Event(), asyncio.Event()

    async def slow(word: str) -> str:
        entered.set()
        await gate.wait()
        return word

    job = Job("h2")
    job.source("words", value_type=str).map(slow).to("counts")
    handle = await job.run(rs_redis, fast_options)
    try:
        await asyncio.wait_for(entered.wait(), 10)
        stopping = asyncio.create_task(handle.stop(timeout_s=10))
        tasks = list(handle.stages[0].tasks.values())
        await wait_until(lambda: all(t._stopping.is_set() for t in tasks), what="stopping")
        gate.set()  # the batch ends after the stop began: it commits
        await asyncio.wait_for(stopping, 15)
    finally:
        gate.set()
        await handle.stop()
    assert sorted(await read(rs_redis, fast_options, "counts")) == [("a", "a"), ("b", "b")]
    stream = Keys(fast_options.namespace).stream("words", 0)
    assert await rs_redis.xpending(stream, "h2.s0") == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }
    assert not await rs_redis.exists(Keys(fast_options.namespace).lease("words", 0, "h2.s0"))
    assert handle.status().state is JobState.STOPPED


async def test_a_batch_overrunning_the_stop_stays_pending_for_the_next_owner(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "words", [("a", "a"), ("b", "b")], partitions=1)
    await topic(rs_redis, fast_options, "counts")
    entered = asyncio.Event()

    async def stuck(state: int | None, word: str) -> tuple[int, str]:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    job = Job("h3")
    job.source("words", value_type=str).stateful_map(stuck, name="n").to("counts")
    async with running_job(job, rs_redis, fast_options) as handle:
        await asyncio.wait_for(entered.wait(), 10)
        await handle.stop(timeout_s=0.1)
    keys = Keys(fast_options.namespace)
    assert (await rs_redis.xpending(keys.stream("words", 0), "h3.s0"))["pending"] == 2
    assert not await rs_redis.exists(keys.lease("words", 0, "h3.s0"))
    assert await read(rs_redis, fast_options, "counts") == []
    assert await StateReader(rs_redis, fast_options).items("h3", "n") == {}
    async with running_job(count_job("h3"), rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    assert sorted(await read(rs_redis, fast_options, "counts")) == [("a", "a=1"), ("b", "b=1")]


@pytest.mark.cluster
async def test_two_handles_of_one_job_share_its_partitions_exactly_once(
    rs_redis: Any, fast_options: MQOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = [(f"w{n % 5}", f"w{n % 5}") for n in range(40)]
    await feed(rs_redis, fast_options, "words", words[:20], partitions=4)
    await topic(rs_redis, fast_options, "counts")
    async with running_job(count_job("h4"), rs_redis, fast_options, consumer_id="c-1") as first:
        await wait_outputs(rs_redis, fast_options, "counts", 1)
        # The check of one job name per process would refuse the second handle: it stands for
        # another process here.
        monkeypatch.setattr(handle_module, "_RUNNING", set())
        async with running_job(
            count_job("h4"), rs_redis, fast_options, consumer_id="c-2"
        ) as second:

            def split() -> bool:
                owned = [first.status().stages[0].owned_partitions,
                         second.status().stages[0].owned_partitions]  # fmt: skip
                return all(owned) and sorted(owned[0] + owned[1]) == [0, 1, 2, 3]

            await wait_until(split, what="the partitions shared")
            await send(rs_redis, fast_options, "words", words[20:])
            await wait_idle(rs_redis, fast_options, second)
            await wait_idle(rs_redis, fast_options, first)
    outputs = await read(rs_redis, fast_options, "counts")
    assert sorted(v for _, v in outputs) == sorted(
        f"w{k}={n}" for k in range(5) for n in range(1, 9)
    )
    assert await StateReader(rs_redis, fast_options).items("h4", "n") == {
        f"w{k}": 8 for k in range(5)
    }
