"""Crash and takeover in the middle of a windowed job: three processes of the page statistics
job (``tests/runtime/window_proc.py``: one-second tumbling windows, grace 2 s, idle timeout
3 s, views / distinct users / p95 per page) while clicks arrive; one process is killed with
SIGKILL mid-run and restarted, and once the clicks stop, the process holding the most open
windows (their timers pending in Redis) is killed and restarted. Every window's final
result must be on ``page-stats`` exactly once and equal the brute-force one: the windows'
state, timers and watermark are taken over with the partitions, and the last windows, which
no later click closes, are closed by the timers the new owners read back.

The clicks go out keyed by page (so each page lives on one partition) with the wall clock at
sending as event time, never decreasing: on each partition event time only grows, so no click
is ever late, whatever the timing, and the reference is simply the clicks grouped by window."""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from typing import Any

import pytest
from examples.pagestats.job import INPUT, LATE, OUTPUT, Click

from redis_streaming import Admin, Keys, MQOptions, Producer, ProducerRecord
from redis_streaming.cluster import ready
from redis_streaming.testing import client_from_url
from tests.helpers import fast_mq, wait_until
from tests.runtime.window_proc import JOB
from tests.runtime.window_ref import problems, read_topic, windows_of
from tests.runtime.wordcount_procs import job_env, kill, start, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PARTITIONS = 6
PAGES = 12
FEED_S = 8.0
WINDOW_PROC = ("-m", "tests.runtime.window_proc")
STAGE = f"{JOB}.s0"


class ClickFeed:
    """Sends clicks in small batches, keyed by page, stamped with the wall clock at sending
    (never decreasing); ``sent`` is every click sent so far."""

    def __init__(self, redis: Any, options: MQOptions) -> None:
        self.producer = Producer(redis, options)
        self.rng = random.Random(17)
        self.sent: list[Click] = []

    async def run(self, seconds: float, batch: int = 12, pause_s: float = 0.04) -> None:
        rng = self.rng
        deadline = time.monotonic() + seconds
        last = 0
        while time.monotonic() < deadline:
            last = max(last, int(time.time() * 1000))
            chunk = [
                Click(page=f"/p{rng.randrange(PAGES)}", user=f"u{rng.randrange(40)}",
                      ms=round(rng.lognormvariate(4.5, 0.6), 1), ts=last)
                for _ in range(batch)
            ]  # fmt: skip
            await self.producer.send_many(INPUT, [ProducerRecord(c, key=c.page) for c in chunk])
            self.sent += chunk
            await asyncio.sleep(pause_s)


async def _open_timers_of(redis: Any, keys: Keys, proc: subprocess.Popen[bytes]) -> int:
    """Timers pending on the partitions ``proc`` holds the lease of."""
    pending = 0
    for p in range(PARTITIONS):
        holder = await redis.get(keys.lease(INPUT, p, STAGE))
        if holder is not None and f"-{proc.pid}-".encode() in holder:
            pending += int(await redis.zcard(f"{keys.namespace}:timers:{{{INPUT}:{p}}}:{STAGE}"))
    return pending


@pytest.mark.cluster
async def test_every_window_is_emitted_once_and_right_through_kills_and_takeovers(
    rs_url: str, rs_namespace: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    options = fast_mq(rs_namespace)
    keys = Keys(rs_namespace)
    redis: Any = await ready(client_from_url(rs_url, max_connections=20))
    try:
        admin = Admin(redis, options)
        for topic in (INPUT, OUTPUT, LATE):
            await admin.create_topic(topic, PARTITIONS)
        env = job_env(rs_url, rs_namespace, REDIS_STREAMING_PAGESTATS__PARTITIONS=str(PARTITIONS))
        workers = [await start(procs, env, WINDOW_PROC) for _ in range(3)]
        began = time.monotonic()
        feed = ClickFeed(redis, options)
        feeding = asyncio.create_task(feed.run(FEED_S))
        try:
            await asyncio.sleep(FEED_S * 0.4)  # mid-run: windows open on every partition
            kill(workers[0])
            print(f"{time.strftime('%H:%M:%S')} killed pid {workers[0].pid} mid-run")
            workers[0] = await start(procs, env, WINDOW_PROC)
            await feeding
        finally:
            feeding.cancel()

        # The clicks have stopped: the last windows are open, closed only by the idle timeout
        # through their timers. Kill the process holding most of those timers.
        victim, timers = 0, 0

        async def a_victim_holds_timers() -> bool:
            nonlocal victim
            nonlocal timers
            pending = [await _open_timers_of(redis, keys, w) for w in workers]
            timers = max(pending)
            victim = pending.index(max(pending))
            return pending[victim] > 0

        await wait_until(a_victim_holds_timers, 10, "a process holding partitions with timers")
        kill(workers[victim])
        when = time.strftime("%H:%M:%S")
        print(f"{when} killed pid {workers[victim].pid} with {timers} timers pending")
        workers[victim] = await start(procs, env, WINDOW_PROC)

        truth = windows_of(feed.sent)

        async def all_out() -> bool:
            return len(await read_topic(redis, keys, OUTPUT, PARTITIONS)) >= len(truth)

        await wait_until(all_out, 60, f"{len(truth)} windows on {OUTPUT}")
        elapsed = time.monotonic() - began
        await asyncio.sleep(1.0)  # anything that would be a duplicate arrives meanwhile
        results = await read_topic(redis, keys, OUTPUT, PARTITIONS)
        found = problems(results, feed.sent)
        assert not found, "\n".join(found)
        assert await read_topic(redis, keys, LATE, PARTITIONS) == []
        print(f"{len(feed.sent)} clicks, {len(truth)} windows emitted once in {elapsed:.1f} s")
        assert await stop(procs) == [0, 0, 0]  # graceful stop on SIGTERM
    finally:
        await redis.aclose()
