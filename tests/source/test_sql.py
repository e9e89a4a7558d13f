"""The polling SQL source: incrementing column and timestamp + tie-break, errors, and exactly
once across kill -9."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from redis_streaming import MQOptions
from redis_streaming.errors import ConfigurationError
from redis_streaming.source import SourceRunner, SqlPollingSource
from tests.helpers import fast_mq, wait_until
from tests.source.sources import topic_entries

ROOT = Path(__file__).resolve().parents[2]
P = 3


@pytest.fixture
def options(rs_namespace: str) -> MQOptions:
    return fast_mq(rs_namespace, default_partitions=P)


async def ids(redis: Any, namespace: str) -> list[int]:
    parts = await topic_entries(redis, namespace, "events", P)
    return [json.loads(e["payload"])["id"] for part in parts for e in part]


async def test_rows_by_incrementing_column_arrive_once_keyed_by_a_column(
    rs_redis: Any, options: MQOptions, rs_pg_database: str
) -> None:
    with psycopg.connect(rs_pg_database, autocommit=True) as db:
        db.execute("CREATE TABLE events (id bigint PRIMARY KEY, account text, amount numeric)")
        db.execute(
            "INSERT INTO events SELECT g, 'a' || (g % 7), g * 1.5 FROM generate_series(1, 50) g"
        )
        source = SqlPollingSource(rs_pg_database, table="events", column="id", key="account")
        runner = SourceRunner(rs_redis, options, source, "events", "ev", batch_size=20)
        runner.start()
        try:
            await wait_until(lambda: runner.position == f"{50:020d}", 10, "50 rows")
            db.execute("INSERT INTO events SELECT g, 'b', 1 FROM generate_series(51, 60) g")
            await wait_until(lambda: runner.position == f"{60:020d}", 10, "60 rows")
        finally:
            await runner.stop()
    got = await ids(rs_redis, options.namespace)
    assert sorted(got) == list(range(1, 61))
    parts = await topic_entries(rs_redis, options.namespace, "events", P)
    for part in parts:
        by_account: dict[str, list[int]] = {}
        for e in part:
            by_account.setdefault(e["key"], []).append(json.loads(e["payload"])["id"])
        assert all(v == sorted(v) for v in by_account.values())


async def test_rows_by_timestamp_and_tie_break_arrive_once_in_order(
    rs_redis: Any, options: MQOptions, rs_pg_database: str
) -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with psycopg.connect(rs_pg_database, autocommit=True) as db:
        db.execute("CREATE TABLE events (id int PRIMARY KEY, at timestamptz)")
        for i in range(30):  # three rows per timestamp
            db.execute("INSERT INTO events VALUES (%s, %s)", [i, t0 + dt.timedelta(seconds=i // 3)])
        source = SqlPollingSource(rs_pg_database, table="events", column="at", tie_breaker="id")
        runner = SourceRunner(rs_redis, options, source, "events", "ev", batch_size=4)
        runner.start()
        try:
            await wait_until(
                lambda: runner.position is not None and runner.position.endswith(f"{29:020d}"),
                10,
                "all",
            )
        finally:
            await runner.stop()
    assert sorted(await ids(rs_redis, options.namespace)) == list(range(30))


async def test_a_missing_table_is_a_configuration_error(
    rs_redis: Any, options: MQOptions, rs_pg_database: str
) -> None:
    source = SqlPollingSource(rs_pg_database, table="nope", column="id")
    runner = SourceRunner(rs_redis, options, source, "events", "ev")
    runner.start()
    with pytest.raises(ConfigurationError, match="nope"):
        await asyncio.wait_for(runner.wait(), 15)
    await runner.stop()
    with pytest.raises(ConfigurationError, match="exactly one"):
        SqlPollingSource(rs_pg_database, column="id")


@pytest.mark.slow
async def test_the_sql_source_killed_mid_run_appends_each_row_once(
    rs_redis: Any, rs_url: str, rs_namespace: str, rs_pg_database: str,
    procs: list[subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    with psycopg.connect(rs_pg_database, autocommit=True) as db:
        db.execute("CREATE TABLE events (id bigint PRIMARY KEY, account text)")
        db.execute("INSERT INTO events SELECT g, 'a' || (g % 13) FROM generate_series(1, 5000) g")

    def start() -> subprocess.Popen[bytes]:
        args = ["-m", "tests.source.sql_process", rs_pg_database, rs_url, rs_namespace]
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    async def appended() -> int:
        return len(await ids(rs_redis, rs_namespace))

    proc = start()
    await wait_until(lambda: appended(), 20, "the first rows")
    proc.kill()
    proc.wait()
    with psycopg.connect(rs_pg_database, autocommit=True) as db:
        db.execute("INSERT INTO events SELECT g, 'b' FROM generate_series(5001, 6000) g")
    start()

    async def all_rows() -> bool:
        return await appended() >= 6000

    await wait_until(all_rows, 30, "6000 rows")
    assert sorted(await ids(rs_redis, rs_namespace)) == list(range(1, 6001))
