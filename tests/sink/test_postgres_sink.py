"""The Postgres sink (redis_streaming.PostgresSink) on a real PostgreSQL server: a job's upserts,
deletes and appends land; each batch is one transaction with its offset (task -> last entry id),
so a batch written again (a retry after a failed Redis commit, a zombie's late write, a stale
batch) writes nothing twice, and a failure inside it writes nothing; a missing table or column
is a clear ConfigurationError, and the job waits for the fix."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from redis_streaming import (
    ConfigurationError,
    Job,
    MQOptions,
    PostgresSink,
    RedisSink,
    SinkBatch,
    SinkRecord,
)
from redis_streaming.mq.keys import Keys
from tests.helpers import wait_until
from tests.runtime.support import feed, running_job, wait_idle
from tests.sink.pg_support import (
    APPEND_DDL,
    UPSERT_DDL,
    appended,
    batch,
    event_row,
    offsets,
    sql,
)

WORDS = [f"w{n % 7}" for n in range(200)] + ["gone", "gone"]


def count(state: int | None, word: str) -> tuple[int, list[Any]]:
    return (state or 0) + 1, [word, (state or 0) + 1]


def as_row(pair: list[Any]) -> dict[str, int] | None:
    """The count as a JSON object, or None (a delete) for the second "gone"."""
    return None if pair == ["gone", 2] else {"n": pair[1]}


async def test_a_jobs_upserts_and_deletes_land_with_the_offset_of_each_partition(
    rs_redis: Any, fast_options: MQOptions, rs_pg_database: str
) -> None:
    url = rs_pg_database
    await sql(url, UPSERT_DDL)
    await feed(rs_redis, fast_options, "words", [(w, w) for w in WORDS])
    sink = PostgresSink(url, "counts")
    job = Job("pc", partitions=2)
    job.source("words", value_type=str).stateful_map(count, name="counts").map(as_row).sink(sink)
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    await sink.close()
    rows = await sql(url, "SELECT key, value FROM counts")
    expected = {w: {"n": c} for w, c in Counter(WORDS).items() if w != "gone"}
    assert dict(rows) == expected
    keys = Keys(fast_options.namespace)
    last = [(await rs_redis.xrevrange(keys.stream("words", p), count=1))[0][0] for p in (0, 1)]
    assert await offsets(url) == [("counts", "pc", "words", p, last[p].decode()) for p in (0, 1)]


async def test_a_jobs_appends_land_once_each(
    rs_redis: Any, fast_options: MQOptions, rs_pg_database: str
) -> None:
    url = rs_pg_database
    await sql(url, APPEND_DDL)
    await feed(rs_redis, fast_options, "in", [(f"k{n % 9}", n) for n in range(500)])
    sink = PostgresSink(url, "events", key_columns=(), columns=event_row, name="ev")
    job = Job("pa")
    job.source("in", value_type=int).filter(lambda n: n % 10 != 3).sink(sink)
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    await sink.close()
    assert sorted(await appended(url)) == [n for n in range(500) if n % 10 != 3]
    assert [row[:4] for row in await offsets(url)] == [("ev", "pa", "in", p) for p in (0, 1)]


async def test_a_batch_written_again_writes_only_what_it_had_not(rs_pg_database: str) -> None:
    """Ids compare as numbers ("5-9" < "5-10"); a stale batch does not move the offset back."""
    url = rs_pg_database
    await sql(url, APPEND_DDL)
    sink = PostgresSink(url, "events", key_columns=(), columns=event_row)
    await sink.write(batch(range(1, 10)))
    await sink.write(batch(range(1, 10)))  # the same batch: its commit to Redis had failed
    await sink.write(batch(range(1, 13)))  # a longer one: 10, 11 and 12 are new
    await sink.write(batch(range(1, 5)))  # a zombie's stale batch: nothing, offset kept
    await sink.write(batch(range(10, 13)))
    await sink.write(batch(range(1, 3), partition=1))  # another task: its own offset
    await sink.close()
    assert await appended(url) == [*range(1, 13), 1, 2]
    assert await offsets(url) == [("events", "j", "in", 0, "5-12"), ("events", "j", "in", 1, "5-2")]


async def test_default_columns_upsert_json_values_and_none_deletes(rs_pg_database: str) -> None:
    class Point(BaseModel):
        x: int
        y: int

    url = rs_pg_database
    await sql(url, UPSERT_DDL)
    sink = PostgresSink(url, "counts")
    values = [("a", Point(x=1, y=2)), ("b", [1, "two"]), ("c", 3), ("a", {"z": 1}), ("c", None)]
    records = [SinkRecord(k, v, 0, f"7-{i}") for i, (k, v) in enumerate(values)]
    await sink.write(SinkBatch("j", "s0", "in", 0, records, "7-4"))
    await sink.close()
    assert dict(await sql(url, "SELECT key, value FROM counts")) == {"a": {"z": 1}, "b": [1, "two"]}


async def test_a_failure_inside_the_transaction_writes_nothing(rs_pg_database: str) -> None:
    """The offset's write fails (a trigger): the batch's rows are not there either."""
    url = rs_pg_database
    await sql(url, APPEND_DDL)
    sink = PostgresSink(url, "events", key_columns=(), columns=event_row)
    await sink.write(batch(range(1, 4)))
    await sql(url, "CREATE TABLE fail_once (x integer); INSERT INTO fail_once VALUES (1)")
    await sql(url, "CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF EXISTS "
              "(SELECT 1 FROM fail_once) THEN RAISE EXCEPTION 'no offsets today'; END IF; "
              "RETURN NEW; END $$")  # fmt: skip
    await sql(url, "CREATE TRIGGER fail BEFORE UPDATE ON rs_sink_offsets "
              "FOR EACH ROW EXECUTE FUNCTION fail()")  # fmt: skip
    with pytest.raises(psycopg.errors.RaiseException, match="no offsets today"):
        await sink.write(batch(range(1, 7)))
    assert await appended(url) == [1, 2, 3]
    await sql(url, "DELETE FROM fail_once")
    await sink.write(batch(range(1, 7)))
    await sink.close()
    assert await appended(url) == [1, 2, 3, 4, 5, 6]


async def test_two_processes_writing_the_same_batch_at_once_write_it_once(
    rs_pg_database: str,
) -> None:
    """A zombie and the partition's new owner: the second waits on the offset's row lock,
    then finds the batch written. The test holds the table locked until both are in."""
    url = rs_pg_database
    await sql(url, APPEND_DDL)
    owner, zombie = (PostgresSink(url, "events", key_columns=(), columns=event_row) for _ in "ab")
    await owner.write(batch(range(1, 3)))
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        writes = asyncio.gather(owner.write(batch(range(1, 8))), zombie.write(batch(range(1, 8))))
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"

        async def both_in() -> bool:
            return (await sql(url, waiting))[0][0] == 2

        await wait_until(both_in, what="both writes waiting on a lock")
        await conn.commit()
        await writes
    for sink in (owner, zombie):
        await sink.close()
    assert await appended(url) == list(range(1, 8))


async def test_a_job_whose_redis_commit_fails_writes_each_record_once(
    rs_redis: Any, fast_options: MQOptions, rs_pg_database: str
) -> None:
    """The batch's commit fails (its Redis sink meets a key of another type) after the
    Postgres write, again and again until the key is fixed: each retry writes nothing."""
    url = rs_pg_database
    await sql(url, APPEND_DDL)
    await feed(rs_redis, fast_options, "in", [(f"k{n}", n) for n in range(120)], partitions=1)
    target = f"{fast_options.namespace}-seen"
    await rs_redis.set(target, "a string, not a hash")
    writes = 0

    class Counting(PostgresSink):
        async def write(self, batch: SinkBatch) -> None:
            nonlocal writes
            writes += 1
            await super().write(batch)

    sink = Counting(url, "events", key_columns=(), columns=event_row)
    job = Job("pf")
    source = job.source("in", value_type=int)
    source.sink(sink)
    source.sink(RedisSink("hash", key=target))
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_until(lambda: writes >= 3, what="the batch written three times")
        assert "WRONGTYPE" in (handle.status().stages[0].last_error or "")
        assert await appended(url) == list(range(50))  # RUNTIME.batch_size
        await rs_redis.delete(target)
        await wait_idle(rs_redis, fast_options, handle)
    await sink.close()
    assert await appended(url) == list(range(120))
    assert await rs_redis.hlen(target) == 120


async def test_a_missing_table_or_column_is_a_clear_error(rs_pg_database: str) -> None:
    url = rs_pg_database
    sink = PostgresSink(url, "events", key_columns=(), columns=event_row)
    with pytest.raises(ConfigurationError, match="table 'events' does not exist in database"):
        await sink.write(batch(range(1, 3)))
    await sql(url, APPEND_DDL)
    keyed = PostgresSink(url, "events", key_columns=("id",), columns=event_row)
    with pytest.raises(ConfigurationError, match=r"no column id \(named by key_columns\)"):
        await keyed.write(batch(range(1, 3)))
    wrong = PostgresSink(url, "events", key_columns=(), columns=lambda r: {"n": 1, "nope": 2})
    with pytest.raises(ConfigurationError, match=r"no column nope \(named by columns"):
        await wrong.write(batch(range(1, 3)))
    await wrong.close()
    assert await appended(url) == []


async def test_a_job_waits_for_its_missing_table(
    rs_redis: Any, fast_options: MQOptions, rs_pg_database: str
) -> None:
    url = rs_pg_database
    await feed(rs_redis, fast_options, "in", list(range(30)), partitions=1)
    sink = PostgresSink(url, "events", key_columns=(), columns=event_row)
    job = Job("pm")
    job.source("in", value_type=int).sink(sink)
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_until(lambda: handle.status().stages[0].last_error is not None)
        assert "table 'events' does not exist" in (handle.status().stages[0].last_error or "")
        await sql(url, APPEND_DDL)
        await wait_idle(rs_redis, fast_options, handle)
    await sink.close()
    assert await appended(url) == list(range(30))


def test_bad_arguments_are_refused_at_once() -> None:
    with pytest.raises(ConfigurationError, match="table name"):
        PostgresSink("postgresql://x", "")
    with pytest.raises(ConfigurationError, match=r"fn\(record\)"):
        PostgresSink("postgresql://x", "t", columns="key")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="sequence"):
        PostgresSink("postgresql://x", "t", key_columns="key")


def test_the_framework_imports_without_psycopg() -> None:
    """psycopg (the postgres extra) is imported on the first write only."""
    code = (
        "import sys; sys.modules['psycopg'] = None\n"  # any import of it fails
        "import redis_streaming\n"
        "redis_streaming.PostgresSink('postgresql://nowhere/db', 'events')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode()
