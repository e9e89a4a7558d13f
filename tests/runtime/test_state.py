"""Keyed state of a running job: what StateReader reports, the write-back cache (a warm batch
reads nothing; a fenced task forgets it), and TTLs (an expired key reads as absent and a later
commit removes it)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from redis_streaming import Job, MQOptions, StateReader, partition_for_key
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.state.codec import encode, encode_key
from tests.helpers import wait_until
from tests.runtime.support import feed, read, running_job, send, topic, wait_idle, wait_outputs


def counter(state: int | None, word: str) -> tuple[int, str]:
    n = (state or 0) + 1
    return n, f"{word}={n}"


def count_job(name: str, ttl: float | None = None) -> Job:
    """``words`` keyed by the producer -> running count per key (store ``n``) -> ``counts``."""
    job = Job(name)
    job.source("words", value_type=str).stateful_map(counter, name="n", ttl=ttl).to("counts")
    return job


@pytest.mark.cluster
async def test_the_reader_gives_every_partitions_keys_values_and_sizes(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    words = ["a", "b", "c", "a", "d", "a", "b"]
    await feed(rs_redis, fast_options, "words", [(w, w) for w in words])
    await topic(rs_redis, fast_options, "counts")
    async with running_job(count_job("st1"), rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        status = handle.status().stages[0]
    reader = StateReader(rs_redis, fast_options)
    assert await reader.items("st1", "n") == {"a": 3, "b": 2, "c": 1, "d": 1}
    stats = await reader.stats("st1", "n")
    expected: dict[int, int] = {}
    for w in "abcd":
        p = partition_for_key(w, 2)
        expected[p] = expected.get(p, 0) + 1
    assert {p: keys for p, (keys, _) in stats.items()} == expected
    assert all(size > 0 for _, size in stats.values())
    assert status.store_keys == {"n": 4}
    assert (status.records_in, status.records_out) == (7, 7)


async def hmget_calls(redis: Any) -> int:
    """HMGET commands the server has run (the state loader's read)."""
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_hmget", {}).get("calls", 0))


async def test_a_warm_batch_is_served_from_the_cache_without_reading(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "words", [("a", "a"), ("b", "b")])
    await topic(rs_redis, fast_options, "counts")
    async with running_job(count_job("st2"), rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        warm = await hmget_calls(rs_redis)
        await send(rs_redis, fast_options, "words", [("a", "a"), ("b", "b"), ("a", "a")])
        await wait_outputs(rs_redis, fast_options, "counts", 5)
        await wait_idle(rs_redis, fast_options, handle)
        assert await hmget_calls(rs_redis) == warm  # keys a and b: no read
        await send(rs_redis, fast_options, "words", [("c", "c")])
        await wait_outputs(rs_redis, fast_options, "counts", 6)
        assert await hmget_calls(rs_redis) == warm + 1  # a new key: one read
    assert sorted(v for _, v in await read(rs_redis, fast_options, "counts")) == [
        "a=1", "a=2", "a=3", "b=1", "b=2", "c=1",
    ]  # fmt: skip


async def wait_expired(redis: Any, options: MQOptions, job: str) -> None:
    """Wait until every key of store ``n`` on partition 0 of ``words`` has expired (the TTL
    index holds wall-clock expiry times, in ms)."""
    index = RuntimeKeys(options.namespace).ttl("words", 0, job, "n")
    latest = (await redis.zrange(index, -1, -1, withscores=True))[0][1]
    await wait_until(lambda: time.time() * 1000 > latest + 1, what="the TTL to pass")


@pytest.mark.cluster
async def test_an_expired_key_reads_as_absent_and_a_later_commit_removes_it(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "words", [("a", "a"), ("b", "b")], partitions=1)
    await topic(rs_redis, fast_options, "counts")
    state = RuntimeKeys(fast_options.namespace).state("words", 0, "st3", "n")
    async with running_job(count_job("st3", ttl=0.3), rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        await wait_expired(rs_redis, fast_options, "st3")
        assert sorted(await rs_redis.hkeys(state)) == [encode_key("a"), encode_key("b")]
        await send(rs_redis, fast_options, "words", [("a", "a")])  # from the warm cache: absent
        await wait_idle(rs_redis, fast_options, handle)
        assert await rs_redis.hkeys(state) == [encode_key("a")]  # b: swept by a's commit
        await wait_expired(rs_redis, fast_options, "st3")
    # A task that starts afresh (cold cache) reads the key as absent too.
    async with running_job(count_job("st3", ttl=0.3), rs_redis, fast_options) as handle:
        await send(rs_redis, fast_options, "words", [("a", "a")])
        await wait_idle(rs_redis, fast_options, handle)
    assert [v for _, v in await read(rs_redis, fast_options, "counts")] == [
        "a=1", "b=1", "a=1", "a=1",
    ]  # fmt: skip


@pytest.mark.cluster
async def test_a_fenced_task_writes_nothing_and_its_successor_reads_the_state_afresh(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    """Another owner took the partition (epoch bumped) and committed ``a`` = 100: the task's
    cached ``a`` = 1 is stale. Its commit is fenced; the task that takes over again reads 100."""
    await feed(rs_redis, fast_options, "words", [("a", "a")], partitions=1)
    await topic(rs_redis, fast_options, "counts")
    keys = RuntimeKeys(fast_options.namespace)
    async with running_job(count_job("st4"), rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        await rs_redis.hincrby(keys.task("words", 0, "st4.s0"), "epoch", 1)
        await rs_redis.hset(keys.state("words", 0, "st4", "n"), encode_key("a"), encode(100))
        await send(rs_redis, fast_options, "words", [("a", "a")])
        await wait_outputs(rs_redis, fast_options, "counts", 2)
        await wait_idle(rs_redis, fast_options, handle)
    assert [v for _, v in await read(rs_redis, fast_options, "counts")] == ["a=1", "a=101"]
    assert await StateReader(rs_redis, fast_options).items("st4", "n") == {"a": 101}
