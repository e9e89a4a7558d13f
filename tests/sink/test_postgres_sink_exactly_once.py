"""Exactly-once into Postgres across crashes: three job processes append a topic of 20,000
records to a table without a unique key through a PostgresSink while one of them is killed
with SIGKILL twice (and restarted). At the end, verified by SQL: every record is in the table
exactly once, and the offsets table holds each partition's last entry id."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import pytest

from redis_streaming import Admin, Keys, MQOptions, Producer
from redis_streaming.cluster import ready
from redis_streaming.testing import client_from_url
from tests.helpers import fast_mq, wait_until
from tests.runtime.wordcount_procs import job_env, kill, start, stop
from tests.sink.pg_job_proc import LOADED_DDL
from tests.sink.pg_support import offsets, sql

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

RECORDS = 20_000
PARTITIONS = 4
JOB_PROC = ("-m", "tests.sink.pg_job_proc")


async def loaded(url: str) -> int:
    return int((await sql(url, "SELECT count(*) FROM loaded"))[0][0])


async def send(producer: Producer, chunk: int = 500, pause_s: float = 0.05) -> None:
    """Send the records ``{"id": i}``, ``chunk`` at a time, pausing between chunks: the job
    processes them while they arrive."""
    for i in range(0, RECORDS, chunk):
        await producer.send_many("records", [{"id": n} for n in range(i, i + chunk)])
        await asyncio.sleep(pause_s)


async def committed(redis: Any, keys: Keys) -> bool:
    """True once the job's group has every entry of every partition acknowledged."""
    for p in range(PARTITIONS):
        groups = await redis.xinfo_groups(keys.stream("records", p))
        mine = [g for g in groups if g["name"] == b"pgload.s0"]
        if not mine or mine[0]["pending"] or mine[0]["lag"] != 0:
            return False
    return True


async def test_kill_9_mid_run_leaves_exactly_one_row_per_record(
    rs_server_url: str,
    rs_namespace: str,
    rs_pg_database: str,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    pg = rs_pg_database
    await sql(pg, LOADED_DDL)
    options: MQOptions = fast_mq(rs_namespace)
    keys = Keys(rs_namespace)
    redis: Any = await ready(client_from_url(rs_server_url))
    began = time.monotonic()
    try:
        await Admin(redis, options).create_topic("records", PARTITIONS)
        env = job_env(rs_server_url, rs_namespace, PG_URL=pg,
                      REDIS_STREAMING_WORDCOUNT__BATCH_SIZE="50")  # fmt: skip
        workers = [await start(procs, env, JOB_PROC) for _ in range(3)]
        feeding = asyncio.create_task(send(Producer(redis, options)))
        try:
            for fraction in (0.25, 0.6):

                async def reached(at_least: int = int(RECORDS * fraction)) -> bool:
                    return await loaded(pg) >= at_least

                await wait_until(reached, 60, f"{fraction:.0%} of the records loaded")
                kill(workers[0])  # the same process slot, twice
                rows = await loaded(pg)
                print(f"killed pid {workers[0].pid} at {rows} rows")
                assert rows < RECORDS, "the run ended before the kill: nothing was tested"
                workers[0] = await start(procs, env, JOB_PROC)
            await feeding
        finally:
            feeding.cancel()
        await wait_until(lambda: committed(redis, keys), 90, "every record committed")
        elapsed = time.monotonic() - began
        total, distinct = (await sql(pg, "SELECT count(*), count(DISTINCT record_id) FROM loaded"))[
            0
        ]
        assert (total, distinct) == (RECORDS, RECORDS)
        last = [(await redis.xrevrange(keys.stream("records", p), count=1))[0][0].decode()
                for p in range(PARTITIONS)]  # fmt: skip
        assert await offsets(pg) == [
            ("loaded", "pgload", "records", p, last[p]) for p in range(PARTITIONS)
        ]
        pids = await sql(pg, "SELECT count(DISTINCT pid) FROM loaded")
        print(f"{RECORDS} records loaded exactly once in {elapsed:.1f} s by {pids[0][0]} processes")
        assert await stop(procs) == [0, 0, 0]
    finally:
        await redis.aclose()
