""":class:`PostgresSink`: batched upserts (or appends) into a Postgres table, exactly-once through
an offsets table written in the same transaction. Needs ``psycopg`` (the ``postgres`` extra),
imported on the first write only: the framework imports without it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic_core import to_jsonable_python

from redis_streaming.errors import ConfigurationError, InvalidArgument
from redis_streaming.ratelimit.spec import RateLimit
from redis_streaming.sink.base import SinkBatch, SinkRecord, sink_rate_limit, stream_id

__all__ = ["PostgresSink"]

Columns = Callable[[SinkRecord], Mapping[str, Any] | None]
_OFFSETS_DDL = (
    "CREATE TABLE IF NOT EXISTS {} (sink text NOT NULL, job text NOT NULL, topic text NOT NULL,"
    " partition integer NOT NULL, last_id text NOT NULL,"
    " PRIMARY KEY (sink, job, topic, partition))"
)
_COLUMNS = (
    "SELECT attname FROM pg_attribute"
    " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
)
_WHERE_TASK = " WHERE sink = %s AND job = %s AND topic = %s AND partition = %s"
_DELETE = ("DELETE",)  # the statement cache's key of the delete (a row shape is a tuple of names)


def _default_columns(rec: SinkRecord) -> Mapping[str, Any] | None:
    from psycopg.types.json import Jsonb

    if rec.value is None:
        return None
    return {"key": rec.key, "value": Jsonb(to_jsonable_python(rec.value))}


def _ident(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*name.split("."))


def _sql(text: str, *names: str) -> Any:
    from psycopg import sql

    return sql.SQL(text).format(*(_ident(n) for n in names))


class PostgresSink:
    """Writes records into ``table`` (``"name"`` or ``"schema.name"``) of the database at
    ``url``, exactly once across crashes, restarts and zombie processes.

    ``columns(record)`` gives a row (column -> value; by default ``key`` and ``value``, the value
    as JSONB), or ``None`` for a delete. With ``key_columns`` (the table's primary key or a
    unique constraint) each row is an upsert (``INSERT ... ON CONFLICT (...) DO UPDATE``) and a
    delete removes the rows whose ``key_columns[0]`` is the record's key; with
    ``key_columns=()`` each row is a plain ``INSERT`` (append) and records without a row are
    skipped.

    Each batch is one transaction: lock this task's row of ``offsets_table`` (created when
    missing: ``sink``, ``job``, ``topic``, ``partition`` -> ``last_id``, the id of the last input
    entry written), skip the records whose entry id is at or below it (written by an earlier
    try of the batch: ids compared as numbers), write the rest in record order (``executemany``
    per run of rows of one shape), raise ``last_id`` to the batch's last id, commit. A crash
    before the commit writes nothing; after it, the batch's retry (by this process or the next
    owner of the partition) finds its records written; a zombie's late write of the same batch
    waits for the row lock, then finds it written. Records emitted by timers in a batch of no
    entries have no entry id: those are written each time (at-least-once).

    ``name`` (default: the table name) tells apart sinks sharing an offsets table. One
    connection per task (input partition), opened on its first batch, closed after an error
    (the next try opens a new one); :meth:`close` closes them once the job has stopped. A
    missing table or column is a :class:`ConfigurationError` (the batch is retried, so the
    stage waits, with the error in its status, until the table is fixed). ``rate_limit`` /
    ``rate_limit_name``: see :func:`~redis_streaming.sink.base.sink_rate_limit` (the limiter's
    default name uses ``name``).
    """

    def __init__(
        self,
        url: str,
        table: str,
        *,
        columns: Columns | None = None,
        key_columns: Sequence[str] = ("key",),
        offsets_table: str = "rs_sink_offsets",
        name: str | None = None,
        rate_limit: str | RateLimit | None = None,
        rate_limit_name: str | None = None,
    ) -> None:
        self.rate_limit, self.rate_limit_name = sink_rate_limit(rate_limit, rate_limit_name)
        if not table or not isinstance(table, str):
            raise InvalidArgument(f"PostgresSink needs a table name, got {table!r}")
        if columns is not None and not callable(columns):
            raise InvalidArgument(f"PostgresSink columns must be fn(record), got {columns!r}")
        if isinstance(key_columns, str):
            raise InvalidArgument(f"PostgresSink key_columns is a sequence, got {key_columns!r}")
        self.url = url
        self.table = table
        self.columns = columns or _default_columns
        self.key_columns = tuple(key_columns)
        self.offsets_table = offsets_table
        self.name = name or table
        self._connections: dict[tuple[str, str, int], Any] = {}
        self._statements: dict[tuple[str, ...], Any] = {}
        self._table_columns: frozenset[str] = frozenset()

    async def write(self, batch: SinkBatch) -> None:
        """Write the batch's records not written before, and its last id, in one transaction."""
        task = (batch.job, batch.topic, batch.partition)
        conn = self._connections.get(task)
        if conn is None or conn.closed:
            conn = await self._connect()
            self._connections[task] = conn
        try:
            async with conn.transaction(), conn.cursor() as cur:
                key = (self.name, *task)
                done = await self._lock_offset(cur, key)
                await self._write_rows(cur, [r for r in batch.records if not _written(r, done)])
                if batch.last_id is not None and stream_id(batch.last_id) > stream_id(done):
                    await cur.execute(
                        _sql("UPDATE {} SET last_id = %s" + _WHERE_TASK, self.offsets_table),
                        (batch.last_id, *key),
                    )
        except BaseException:
            self._connections.pop(task, None)
            await conn.close()
            raise

    async def close(self) -> None:
        """Close the connections (the job's tasks are done with this sink)."""
        connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            await conn.close()

    async def _connect(self) -> Any:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        try:
            await self._prepare(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _prepare(self, conn: Any) -> None:
        """Create the offsets table when missing; read the table's columns (checking it exists
        and has the key columns)."""
        import psycopg

        # Created meanwhile by another connection: IF NOT EXISTS is not atomic.
        with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            await conn.execute(_sql(_OFFSETS_DDL, self.offsets_table))
        cur = await conn.execute(_COLUMNS, (_ident(self.table).as_string(conn),))
        found = frozenset(row[0] for row in await cur.fetchall())
        if not found:
            raise ConfigurationError(
                f"PostgresSink: table {self.table!r} does not exist in database "
                f"{conn.info.dbname!r}: create it (or fix the table name)"
            )
        self._check(found, self.key_columns, "key_columns")
        self._table_columns = found

    def _check(self, found: frozenset[str], names: Sequence[str], what: str) -> None:
        missing = [n for n in names if n not in found]
        if missing:
            raise ConfigurationError(
                f"PostgresSink: table {self.table!r} has no column {', '.join(missing)} (named "
                f"by {what}); its columns are {', '.join(sorted(found))}"
            )

    async def _lock_offset(self, cur: Any, key: tuple[str, str, str, int]) -> str:
        """The task's stored last id (``"0-0"`` at first), its row locked till the commit (a
        zombie's write of the same batch waits, then finds it written)."""
        await cur.execute(
            _sql("INSERT INTO {} VALUES (%s, %s, %s, %s, '0-0') ON CONFLICT DO NOTHING",
                 self.offsets_table), key,
        )  # fmt: skip
        await cur.execute(
            _sql("SELECT last_id FROM {}" + _WHERE_TASK + " FOR UPDATE", self.offsets_table), key
        )
        row = await cur.fetchone()
        return str(row[0])

    async def _write_rows(self, cur: Any, records: list[SinkRecord]) -> None:
        """Upserts and deletes in record order: consecutive ones of a kind and shape batched."""
        runs: list[tuple[Any, list[Any]]] = []
        for rec in records:
            row = self.columns(rec)
            if row is None:
                if not self.key_columns:
                    continue  # an append-only table: nothing to delete
                stmt, params = self._delete(), (rec.key,)
            else:
                stmt, params = self._upsert(tuple(row)), tuple(row.values())
            if runs and runs[-1][0] is stmt:
                runs[-1][1].append(params)
            else:
                runs.append((stmt, [params]))
        for stmt, rows in runs:
            await cur.executemany(stmt, rows)

    def _delete(self) -> Any:
        stmt = self._statements.get(_DELETE)
        if stmt is None:
            stmt = _sql("DELETE FROM {} WHERE {} = %s", self.table, self.key_columns[0])
            self._statements[_DELETE] = stmt
        return stmt

    def _upsert(self, names: tuple[str, ...]) -> Any:
        """The INSERT (upsert) of a row with columns ``names`` (built once per shape)."""
        from psycopg import sql

        stmt = self._statements.get(names)
        if stmt is not None:
            return stmt
        if not names:
            raise ConfigurationError("PostgresSink: columns(record) gave a row of no columns")
        self._check(self._table_columns, names, "columns(record)")
        comma = sql.SQL(", ")
        stmt = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            _ident(self.table),
            comma.join(map(sql.Identifier, names)),
            comma.join(sql.Placeholder() * len(names)),
        )
        if self.key_columns:
            rest = [n for n in names if n not in self.key_columns]
            sets = comma.join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in rest)
            action = sql.SQL("DO UPDATE SET {}").format(sets) if rest else sql.SQL("DO NOTHING")
            keys = comma.join(map(sql.Identifier, self.key_columns))
            stmt = sql.SQL("{} ON CONFLICT ({}) {}").format(stmt, keys, action)
        self._statements[names] = stmt
        return stmt

    def __repr__(self) -> str:
        return f"PostgresSink(table={self.table!r}, sink={self.name!r})"


def _written(rec: SinkRecord, done: str) -> bool:
    """True when ``rec`` came from an entry at or below the stored offset ``done``."""
    return rec.entry_id is not None and stream_id(rec.entry_id) <= stream_id(done)
