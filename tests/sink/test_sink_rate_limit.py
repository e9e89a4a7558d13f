"""Sinks' ``rate_limit=``: one permit per record from a limiter shared by every task of the job,
taken before the batch is written (a Redis sink: before its commit); waiting delays the batch
(the stage reads on only after it), nothing is dropped, order is kept, a stop ends the wait
with the batch uncommitted; a bad spec fails when the sink is built."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from redis_streaming import CallableSink, Job, MQOptions, PostgresSink, RedisSink, SinkRecord
from redis_streaming.errors import ConfigurationError, InvalidName
from redis_streaming.mq.keys import Keys
from redis_streaming.ratelimit import RateLimit
from redis_streaming.ratelimit.keys import RateLimitKeys
from redis_streaming.sink.base import stream_id
from tests.helpers import wait_until
from tests.runtime.support import feed, running_job, wait_idle


async def test_a_limited_sink_gets_every_record_in_order_at_the_limits_rate(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    """300 records on 2 partitions (2 tasks sharing the limiter) through a 100/s sink: about
    3 s (a rate bound: 299 permits after the first at 10 ms each), each record once, each
    partition's in entry order."""
    await feed(rs_redis, fast_options, "in", [(f"k{n % 7}", n) for n in range(300)])
    got: list[SinkRecord] = []
    job = Job("rl")
    job.source("in", value_type=int).sink(CallableSink(got.extend, rate_limit="100/s"))
    started = time.monotonic()
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_until(lambda: len(got) >= 300, what="300 records sunk")
        took = time.monotonic() - started
        await wait_idle(rs_redis, fast_options, handle)
    assert sorted(r.value for r in got) == list(range(300))
    for key in {r.key for r in got}:  # a key's records come from one partition, in order
        values = [r.value for r in got if r.key == key]
        assert values == sorted(values)
    assert len(got) == 300
    assert 2.99 * 0.85 <= took <= 2.99 * 1.15, took
    assert await rs_redis.exists(RateLimitKeys(fast_options.namespace).limiter("sink:rl:s0.0"))


async def test_a_redis_sinks_permits_are_taken_before_its_commit(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "in", [(f"k{n}", n) for n in range(100)], partitions=1)
    job = Job("rlr")
    sink = RedisSink("hash", key="rl-hash", rate_limit="50/s", rate_limit_name="api")
    job.source("in", value_type=int).sink(sink)
    started = time.monotonic()
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_until(lambda: _hlen(rs_redis, 100), what="100 fields written")
        took = time.monotonic() - started
        await wait_idle(rs_redis, fast_options, handle)
    assert 1.98 * 0.85 <= took <= 1.98 * 1.15, took
    assert await rs_redis.hget("rl-hash", "k42") == b"42"
    assert await rs_redis.exists(RateLimitKeys(fast_options.namespace).limiter("api"))


async def _hlen(redis: Any, count: int) -> bool:
    return int(await redis.hlen("rl-hash")) >= count


async def test_a_stop_ends_the_wait_and_the_batch_stays_pending(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    """At 1/min a batch of 10 waits 9 minutes: the stop ends the wait, nothing is written or
    committed, and the next run (without a limit) writes the batch."""
    await feed(rs_redis, fast_options, "in", list(range(10)), partitions=1)
    got: list[SinkRecord] = []
    job = Job("rls")
    job.source("in", value_type=int).sink(CallableSink(got.extend, rate_limit="1/min"))
    stream = Keys(fast_options.namespace).stream("in", 0)

    async def read_once() -> bool:
        groups = await rs_redis.xinfo_groups(stream)
        return bool(groups) and groups[0]["pending"] == 10

    handle = await job.run(rs_redis, fast_options)
    try:
        await wait_until(read_once, what="the batch read")
    finally:
        await asyncio.wait_for(handle.stop(), 10)
    assert got == []
    (group,) = await rs_redis.xinfo_groups(stream)
    assert group["pending"] == 10
    again = Job("rls")
    again.source("in", value_type=int).sink(CallableSink(got.extend))
    async with running_job(again, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    assert [r.value for r in got] == list(range(10))
    assert [stream_id(r.entry_id or "") for r in got] == sorted(
        stream_id(r.entry_id or "") for r in got
    )


def test_a_bad_rate_limit_fails_when_the_sink_is_built() -> None:
    for bad in ("fast", "100", "0/s", "10/s, burst=x", 100):
        with pytest.raises(ConfigurationError, match="rate limit"):
            CallableSink(print, rate_limit=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="rate limit"):
            RedisSink("set", key="k", rate_limit=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="rate limit"):
            PostgresSink("postgresql://x", "t", rate_limit=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="needs a rate_limit"):
        CallableSink(print, rate_limit_name="api")
    with pytest.raises(InvalidName):
        CallableSink(print, rate_limit="1/s", rate_limit_name="a b")
    sink = CallableSink(print, rate_limit="20/min, burst=5")
    assert sink.rate_limit == RateLimit(20, 60.0, 5)
    assert CallableSink(print).rate_limit is None
