"""Exactly-once, end to end: three ``python -m examples.wordcount`` processes count 50,000
sentences while one of them is killed with SIGKILL twice (and restarted) and, on a single server,
the Redis server itself is killed and restarted (AOF, ``appendfsync always``). Every word's
outputs on ``word-counts`` must be exactly 1, 2, ..., n in order (no gap, no repeat) and its
stored count n, where n is the brute-force count. The same on the 3-master cluster, without the
server restart."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from typing import Any

import pytest
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from redis_streaming import Admin, Keys, MQOptions
from redis_streaming.cluster import ready
from redis_streaming.runtime import StateReader
from redis_streaming.testing import RedisServer, client_from_url
from tests.helpers import fast_mq
from tests.runtime.wordcount_procs import (
    Feed,
    exactly_once_problems,
    job_env,
    kill,
    output_count,
    read_outputs,
    sentences,
    start,
    stop,
    true_counts,
    wait_outputs,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PARTITIONS = 12
SENTENCES = 50_000
VOCABULARY = 200
AOF = ("--appendonly", "yes", "--appendfsync", "always")


async def _run(
    url: str,
    namespace: str,
    procs: list[subprocess.Popen[bytes]],
    server: RedisServer | None = None,
) -> None:
    """The scenario; with ``server``, it is also killed and restarted once."""
    options: MQOptions = fast_mq(namespace)
    keys = Keys(namespace)
    texts = sentences(SENTENCES, VOCABULARY)
    truth = true_counts(texts)
    total = sum(truth.values())
    began = time.monotonic()
    # Retries carry the test's own reads and sends over the server's restart.
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 5)
    redis: Any = await ready(client_from_url(url, max_connections=50, retry=retry))
    try:
        admin = Admin(redis, options)
        for topic in ("sentences", "word-counts"):
            await admin.create_topic(topic, PARTITIONS)
        env = job_env(url, namespace)
        workers = [await start(procs, env) for _ in range(3)]
        feed = Feed(redis, options)
        # About 2,500 sentences a second: still sending when the faults come.
        feeding = asyncio.create_task(feed.run(texts, batch=250, pause_s=0.1))
        try:
            faults = [("kill", 0.15), ("server", 0.40), ("kill", 0.65)]
            for fault, fraction in faults:
                await wait_outputs(
                    redis, keys, "word-counts", PARTITIONS, int(total * fraction), 120
                )
                if fault == "kill":
                    kill(workers[0])  # the same process slot, twice
                    print(f"{time.strftime('%H:%M:%S')} killed pid {workers[0].pid}")
                    workers[0] = await start(procs, env)
                elif server is not None:
                    async with feed.lock:  # between two batches: what was sent is known
                        server.kill()
                        await asyncio.to_thread(server.start)  # replays the AOF
                    print(f"server restarted, {feed.sent} sentences sent")
            await feeding
        finally:
            feeding.cancel()
        # On a timeout, the comparison below says which counts are missing.
        with contextlib.suppress(AssertionError):
            await wait_outputs(redis, keys, "word-counts", PARTITIONS, total, 180)
        elapsed = time.monotonic() - began
        # Let anything that would be a duplicate arrive, then read everything.
        await asyncio.sleep(1.0)
        outputs = await read_outputs(redis, keys, "word-counts", PARTITIONS)
        counts = {w: [o["count"] for o in outs] for w, outs in outputs.items()}
        assert all(o["word"] == w for w, outs in outputs.items() for o in outs)
        problems = exactly_once_problems(counts, truth)
        assert not problems, "\n".join(problems)
        assert await output_count(redis, keys, "word-counts", PARTITIONS) == total
        assert await StateReader(redis, options).items("wordcount", "counts") == truth
        print(f"{SENTENCES} sentences, {total} words counted exactly once in {elapsed:.1f} s")
        assert await stop(procs) == [0, 0, 0]  # graceful stop on SIGTERM
    finally:
        await redis.aclose()


async def test_wordcount_is_exactly_once_through_kills_and_a_server_restart(
    rs_namespace: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    server = RedisServer(args=AOF).start()
    try:
        await _run(server.url, rs_namespace, procs, server)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        server.close()


async def test_wordcount_is_exactly_once_through_kills_on_a_cluster(
    rs_cluster_url: str, rs_namespace: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    await _run(rs_cluster_url, rs_namespace, procs)
