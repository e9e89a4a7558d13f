"""Postgres CDC against a real PostgreSQL and a real Redis: snapshot, changes in commit order per
key, the snapshot's boundary, the slot's advance, and the error cases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from redis_streaming import MQOptions
from redis_streaming.cdc import PostgresCdcSource
from redis_streaming.errors import ConfigurationError, SourceError
from redis_streaming.source import SourceBatch, SourceRunner
from tests.cdc.helpers import by_key, changes
from tests.helpers import fast_mq, wait_until

P = 3
TOPIC = "pg.public.accounts"


@pytest.fixture
def options(rs_namespace: str) -> MQOptions:
    return fast_mq(rs_namespace, default_partitions=P)


@pytest.fixture
def db(rs_pg_database: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(rs_pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int, note text)")
        yield conn


def flushed(db: psycopg.Connection[Any]) -> str:
    row = db.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


async def caught_up(runner: SourceRunner, db: psycopg.Connection[Any]) -> None:
    """Wait until the runner has stored a position past everything committed so far."""
    target = flushed(db)
    high, low = target.split("/")
    lsn = (int(high, 16) << 32) | int(low, 16)
    await wait_until(
        lambda: (
            runner.position is not None
            and runner.position.startswith("1")
            and int(runner.position[1:17], 16) >= lsn - 1
        ),
        20,
        f"position past {target}",
    )


def cdc(url: str, redis: Any, options: MQOptions, **kw: Any) -> SourceRunner:
    source = PostgresCdcSource(url, tables=["public.accounts"], **kw)
    return SourceRunner(redis, options, source, None, "accounts-cdc", batch_size=50)


async def test_snapshot_then_inserts_updates_and_deletes_in_commit_order_per_key(
    rs_redis: Any, options: MQOptions, rs_pg_database: str, db: psycopg.Connection[Any]
) -> None:
    db.execute("INSERT INTO accounts SELECT g, 100, 'x' FROM generate_series(1, 120) g")
    runner = cdc(rs_pg_database, rs_redis, options)
    runner.start()
    try:
        # streaming and idle (its position moved past the end of the WAL)
        await wait_until(lambda: (runner.position or "").startswith("1"), 10, "idle")
        db.execute("INSERT INTO accounts VALUES (500, 1, 'new')")
        with db.transaction():
            db.execute("UPDATE accounts SET balance = 2 WHERE id = 500")
            db.execute("UPDATE accounts SET balance = 3 WHERE id = 500")
            db.execute("DELETE FROM accounts WHERE id = 1")
            db.execute("UPDATE accounts SET balance = 50 WHERE id = 2")
        db.execute("DELETE FROM accounts WHERE id = 500")
        await caught_up(runner, db)
    finally:
        await runner.stop()
    keyed = by_key(await changes(rs_redis, options.namespace, TOPIC, P))
    assert len(keyed) == 121
    assert [(m["op"], (m["after"] or {}).get("balance")) for m in keyed["500"]] == [
        ("insert", 1), ("update", 2), ("update", 3), ("delete", None),
    ]  # fmt: skip
    assert [m["op"] for m in keyed["1"]] == ["snapshot", "delete"]
    assert keyed["1"][1]["before"] == {"id": 1}
    assert [(m["op"], m["after"]["balance"]) for m in keyed["2"]] == [
        ("snapshot", 100), ("update", 50),
    ]  # fmt: skip
    assert all(len(ms) == 1 and ms[0]["op"] == "snapshot" for k, ms in keyed.items()
               if k not in ("1", "2", "500"))  # fmt: skip
    one_tx = [m for ms in keyed.values() for m in ms if m["op"] != "snapshot"][1:]
    assert one_tx[0]["table"] == "public.accounts"
    for ms in keyed.values():
        positions = [m["position"] for m in ms]
        assert positions == sorted(set(positions))
    # the slot moved past what is in Redis (and only then)
    row = db.execute("SELECT confirmed_flush_lsn FROM pg_replication_slots").fetchone()
    assert row is not None
    assert str(row[0]) >= keyed["500"][-1]["lsn"] or len(str(row[0])) > 9


class Hooked:
    """A source whose first read runs ``hook`` (while the snapshot's transaction is open)."""

    def __init__(self, inner: PostgresCdcSource, hook: Any) -> None:
        self.inner = inner
        self.hook = hook

    @property
    def meta(self) -> str | None:
        return self.inner.meta

    async def open(self, position: str | None, meta: str | None) -> None:
        await self.inner.open(position, meta)

    async def read(self, after: str | None, limit: int) -> SourceBatch:
        batch = await self.inner.read(after, limit)
        if self.hook is not None:
            self.hook, hook = None, self.hook
            hook()
        return batch

    async def ack(self, position: str) -> None:
        await self.inner.ack(position)

    async def close(self) -> None:
        await self.inner.close()


async def test_rows_changed_around_the_snapshot_arrive_once_each(
    rs_redis: Any, options: MQOptions, rs_pg_database: str, db: psycopg.Connection[Any]
) -> None:
    db.execute("INSERT INTO accounts SELECT g, 0, 'x' FROM generate_series(1, 200) g")
    # Changes committed after the slot exists but before the snapshot: in both the slot's
    # stream and the snapshot; the stream must skip them.
    db.execute("CREATE PUBLICATION redis_streaming FOR TABLE accounts")  # before the slot
    db.execute("SELECT pg_create_logical_replication_slot('redis_streaming', 'pgoutput')")
    db.execute("UPDATE accounts SET balance = 1 WHERE id <= 10")
    db.execute("INSERT INTO accounts VALUES (1000, 1, 'before-snapshot')")

    done: list[bool] = []

    def during_snapshot() -> None:  # committed while the snapshot is being read
        done.append(True)
        db.execute("UPDATE accounts SET balance = balance + 10 WHERE id IN (5, 150)")
        db.execute("DELETE FROM accounts WHERE id = 199")
        db.execute("INSERT INTO accounts VALUES (1001, 7, 'during')")

    source = Hooked(PostgresCdcSource(rs_pg_database, tables=["public.accounts"]), during_snapshot)
    runner = SourceRunner(rs_redis, options, source, None, "accounts-cdc", batch_size=20)
    runner.start()
    try:
        await wait_until(lambda: bool(done), 10, "the changes during the snapshot")
        await caught_up(runner, db)
    finally:
        await runner.stop()
    keyed = by_key(await changes(rs_redis, options.namespace, TOPIC, P))
    ops = {k: [(m["op"], (m["after"] or {}).get("balance")) for m in ms] for k, ms in keyed.items()}
    assert ops["3"] == [("snapshot", 1)]
    assert ops["1000"] == [("snapshot", 1)]
    assert ops["5"] == [("snapshot", 1), ("update", 11)]
    assert ops["150"] == [("snapshot", 0), ("update", 10)]
    assert ops["199"] == [("snapshot", 0), ("delete", None)]
    assert ops["1001"] == [("insert", 7)]
    assert sum(len(v) for v in ops.values()) == 201 + 4


async def test_a_crash_between_append_and_position_appends_nothing_twice(
    rs_redis: Any, options: MQOptions, rs_pg_database: str, db: psycopg.Connection[Any]
) -> None:
    runner = cdc(rs_pg_database, rs_redis, options)
    runner.start()
    try:
        await wait_until(lambda: runner.position is not None, 10, "snapshot done")
        for i in range(20):
            db.execute("INSERT INTO accounts VALUES (%s, %s, 'x')", [i, i])
        await caught_up(runner, db)
    finally:
        await runner.stop()
    # Forget the stored position as if the process died before storing it: the slot has
    # advanced, so rewind it by dropping and reading again is impossible; instead move the
    # stored position back to the snapshot's end and let the runner read its changes again.
    key = f"{options.namespace}:source:{{src:accounts-cdc}}"
    position = (await rs_redis.hget(key, "position")).decode()
    db.execute("SELECT pg_drop_replication_slot('redis_streaming')")
    db.execute("SELECT pg_create_logical_replication_slot('redis_streaming', 'pgoutput')")
    db.execute("INSERT INTO accounts VALUES (100, 100, 'after')")
    await rs_redis.hset(key, "position", position[:1] + "0" * 16 + "FFFFFFFF")
    runner = cdc(rs_pg_database, rs_redis, options)
    runner.start()
    try:
        await caught_up(runner, db)
    finally:
        await runner.stop()
    keyed = by_key(await changes(rs_redis, options.namespace, TOPIC, P))
    assert all(len(ms) == 1 for ms in keyed.values())
    assert len(keyed) == 21


async def test_a_dropped_slot_stops_the_runner_with_a_clear_error(
    rs_redis: Any, options: MQOptions, rs_pg_database: str, db: psycopg.Connection[Any]
) -> None:
    runner = cdc(rs_pg_database, rs_redis, options)
    runner.start()
    try:
        await wait_until(lambda: runner.position is not None, 10, "snapshot done")
        db.execute("INSERT INTO accounts VALUES (1, 1, 'x')")
        await caught_up(runner, db)
    finally:
        await runner.stop()
    db.execute("SELECT pg_drop_replication_slot('redis_streaming')")
    runner = cdc(rs_pg_database, rs_redis, options)
    runner.start()
    with pytest.raises(SourceError, match="slot 'redis_streaming' does not exist"):
        await asyncio.wait_for(runner.wait(), 15)
    assert runner.status().state == "failed"
    await runner.stop()


async def test_a_dropped_publication_stops_the_runner_with_a_clear_error(
    rs_redis: Any, options: MQOptions, rs_pg_database: str, db: psycopg.Connection[Any]
) -> None:
    runner = cdc(rs_pg_database, rs_redis, options)
    runner.start()
    try:
        await wait_until(lambda: runner.position is not None, 10, "snapshot done")
        db.execute("DROP PUBLICATION redis_streaming")
        db.execute("INSERT INTO accounts VALUES (1, 1, 'x')")
        with pytest.raises(SourceError, match="publication"):
            await asyncio.wait_for(runner.wait(), 15)
    finally:
        await runner.stop()


async def test_a_table_without_primary_key_is_a_configuration_error(
    rs_redis: Any, options: MQOptions, rs_pg_database: str, db: psycopg.Connection[Any]
) -> None:
    db.execute("CREATE TABLE log (line text)")
    source = PostgresCdcSource(rs_pg_database, tables=["public.accounts", "public.log"])
    runner = SourceRunner(rs_redis, options, source, None, "cdc")
    runner.start()
    with pytest.raises(ConfigurationError, match=r"public\.log has no primary key"):
        await asyncio.wait_for(runner.wait(), 15)
    await runner.stop()


async def test_an_unreachable_database_is_retried_with_the_error_shown(
    rs_redis: Any, options: MQOptions
) -> None:
    source = PostgresCdcSource("postgresql://postgres@127.0.0.1:1/none", tables=["a"])
    runner = SourceRunner(rs_redis, options, source, None, "cdc")
    runner.start()
    try:
        await wait_until(lambda: runner.status().last_error is not None, 10, "an error")
        assert runner.running
        assert runner.status().state != "failed"
        assert "OperationalError" in (runner.status().last_error or "")
    finally:
        await runner.stop()


async def test_a_row_that_cannot_be_sent_goes_to_the_dead_letters(
    rs_redis: Any, rs_namespace: str, rs_pg_database: str, db: psycopg.Connection[Any]
) -> None:
    options = fast_mq(rs_namespace, default_partitions=P, max_payload_bytes=2000)
    runner = cdc(rs_pg_database, rs_redis, options)
    runner.start()
    try:
        await wait_until(lambda: runner.position is not None, 10, "snapshot done")
        db.execute("INSERT INTO accounts VALUES (1, 1, 'small')")
        db.execute("INSERT INTO accounts VALUES (2, 2, repeat('x', 5000))")
        db.execute("INSERT INTO accounts VALUES (3, 3, 'small')")
        await caught_up(runner, db)
    finally:
        await runner.stop()
    keyed = by_key(await changes(rs_redis, rs_namespace, TOPIC, P))
    assert sorted(keyed) == ["1", "3"]
    dlq = await rs_redis.xrange(f"{rs_namespace}:dlq:{{{TOPIC}}}")
    assert len(dlq) == 1
    fields = dlq[0][1]
    assert fields[b"key"] == b"2"
    assert fields[b"dlq_reason"] == b"undecodable"
    assert b"max_payload_bytes" in fields[b"dlq_error"]


def test_bad_names_are_refused_at_once() -> None:
    with pytest.raises(ConfigurationError, match="slot"):
        PostgresCdcSource("postgresql://x", slot="Bad-Slot")
