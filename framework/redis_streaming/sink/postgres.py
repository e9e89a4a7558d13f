""":class:`PostgresSink`: batched upserts into a Postgres table, exactly-once through an offsets
table written in the same transaction (needs ``psycopg``: the ``postgres`` extra)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from redis_streaming.errors import InvalidArgument
from redis_streaming.sink.base import SinkBatch, SinkRecord, stream_id

__all__ = ["PostgresSink"]

Columns = Callable[[SinkRecord], Mapping[str, Any] | None]
_OFFSETS_DDL = (
    "CREATE TABLE IF NOT EXISTS {} (sink text NOT NULL, job text NOT NULL, topic text NOT NULL,"
    " partition integer NOT NULL, last_id text NOT NULL,"
    " PRIMARY KEY (sink, job, topic, partition))"
)


def _default_columns(rec: SinkRecord) -> Mapping[str, Any] | None:
    from psycopg.types.json import Jsonb

    return None if rec.value is None else {"key": rec.key, "value": Jsonb(rec.value)}


def _ident(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*name.split("."))


class PostgresSink:
    """Writes records into ``table`` at ``url``, exactly once across crashes and restarts.

    ``columns(record)`` gives a row (column -> value; default ``key`` and ``value`` as JSONB), or
    ``None`` to delete the row with the record's ``key_columns`` (taken from ``columns`` is
    impossible then, so deletes match ``key_columns[0] = record.key``). With ``key_columns``
    (the table's primary key or a unique constraint) a row is an upsert (``INSERT ... ON
    CONFLICT (...) DO UPDATE``); with ``key_columns=()`` it is a plain ``INSERT``.

    Each batch is one transaction: lock this task's row of ``offsets_table`` (``sink``, job,
    input topic, partition -> last entry id; created when missing), skip the records whose entry
    id is at or below it (written by an earlier try of the batch), write the rest (batched with
    ``executemany``), store the batch's last id, commit. A crash before the commit writes
    nothing; after it, the batch's retry finds its records written. ``sink`` (default: the
    table name) tells apart several sinks sharing an offsets table. One connection per task
    (input partition), opened on its first batch, closed and reopened after an error.
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
    ) -> None:
        if not table or not isinstance(table, str):
            raise InvalidArgument(f"PostgresSink needs a table name, got {table!r}")
        if columns is not None and not callable(columns):
            raise InvalidArgument(f"PostgresSink columns must be fn(record), got {columns!r}")
        self.url = url
        self.table = table
        self.columns = columns or _default_columns
        self.key_columns = tuple(key_columns)
        self.offsets_table = offsets_table
        self.name = name or table
        self._connections: dict[tuple[str, str, int], Any] = {}
        self._statements: dict[tuple[str, ...], Any] = {}

    async def write(self, batch: SinkBatch) -> None:
        """Write the batch's records not written before, and its last id, in one transaction."""
        task = (batch.job, batch.topic, batch.partition)
        conn = self._connections.get(task)
        if conn is None or conn.closed:
            conn = self._connections[task] = await self._connect()
        try:
            async with conn.transaction(), conn.cursor() as cur:
                done = await self._lock_offset(cur, batch)
                todo = [r for r in batch.records if not _written(r, done)]
                await self._write_rows(cur, todo)
                if batch.last_id is not None:
                    await cur.execute(self._sql("UPDATE {} SET last_id = %s WHERE sink = %s AND "
                        "job = %s AND topic = %s AND partition = %s", self.offsets_table),
                        (batch.last_id, self.name, *task))  # fmt: skip
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
        await conn.execute(self._sql(_OFFSETS_DDL, self.offsets_table))
        return conn

    def _sql(self, text: str, *names: str) -> Any:
        from psycopg import sql

        return sql.SQL(text).format(*(_ident(n) for n in names))

    async def _lock_offset(self, cur: Any, batch: SinkBatch) -> tuple[int, int] | None:
        """The task's stored last id, its row locked till the commit (a zombie's write of the
        same batch waits, then finds it written)."""
        key = (self.name, batch.job, batch.topic, batch.partition)
        await cur.execute(self._sql("INSERT INTO {} VALUES (%s, %s, %s, %s, '0-0') "
            "ON CONFLICT DO NOTHING", self.offsets_table), key)  # fmt: skip
        await cur.execute(self._sql("SELECT last_id FROM {} WHERE sink = %s AND job = %s AND "
            "topic = %s AND partition = %s FOR UPDATE", self.offsets_table), key)  # fmt: skip
        row = await cur.fetchone()
        return stream_id(row[0]) if row and row[0] != "0-0" else None

    async def _write_rows(self, cur: Any, records: list[SinkRecord]) -> None:
        """Upserts and deletes in record order: consecutive ones of a kind and shape batched."""
        runs: list[tuple[Any, list[Any]]] = []
        for rec in records:
            row = self.columns(rec)
            if row is None:
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
        if not self.key_columns:
            raise InvalidArgument("a PostgresSink without key_columns cannot delete")
        stmt = self._statements.get(())
        if stmt is None:
            stmt = self._statements[()] = self._sql(
                "DELETE FROM {} WHERE {} = %s", self.table, self.key_columns[0]
            )
        return stmt

    def _upsert(self, names: tuple[str, ...]) -> Any:
        """The INSERT (upsert) of a row with columns ``names`` (built once per shape)."""
        from psycopg import sql

        stmt = self._statements.get(names)
        if stmt is not None:
            return stmt
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


def _written(rec: SinkRecord, done: tuple[int, int] | None) -> bool:
    return done is not None and rec.entry_id is not None and stream_id(rec.entry_id) <= done
