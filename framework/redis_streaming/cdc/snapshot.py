"""The initial snapshot: the captured tables as of one REPEATABLE READ snapshot taken after the
replication slot was created, and which streamed transactions it already contains.

No gap, no duplicate: every transaction that commits after the slot's creation is in the slot's
stream; the snapshot holds exactly those whose xid is visible in it (``pg_current_snapshot()``),
so the stream skips those and delivers the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis_streaming.cdc.catalog import TableInfo

__all__ = ["SnapshotReader", "Visibility"]


@dataclass(slots=True, frozen=True)
class Visibility:
    """A ``pg_snapshot`` (64-bit xids): which transactions it sees."""

    xmin: int
    xmax: int
    xip: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Visibility:
        """From ``pg_current_snapshot()::text``: ``xmin:xmax:xip1,xip2,...``."""
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x))

    def __str__(self) -> str:
        return f"{self.xmin}:{self.xmax}:{','.join(str(x) for x in sorted(self.xip))}"

    def visible(self, xid32: int) -> bool:
        """True when the transaction ``xid32`` (a 32-bit xid, as in pgoutput's Begin) committed
        before the snapshot: below xmin, or below xmax and not in progress then."""
        diff = (xid32 - (self.xmax & 0xFFFFFFFF) + 2**31) % 2**32 - 2**31
        full = self.xmax + diff  # the 64-bit xid nearest to xmax with these low 32 bits
        return full < self.xmin or (full < self.xmax and full not in self.xip)


class SnapshotReader:
    """Reads ``tables`` (in order) in one REPEATABLE READ READ ONLY transaction on its own
    connection, ``limit`` rows at a time, every value as text."""

    def __init__(self, url: str, tables: list[TableInfo]) -> None:
        self.url = url
        self.tables = tables
        self.visibility: Visibility | None = None
        self._conn: Any = None
        self._cursor: Any = None
        self.table_index = 0
        self.row_index = 0

    async def begin(self) -> Visibility:
        """Start the transaction; returns its snapshot."""
        import psycopg

        self._conn = await psycopg.AsyncConnection.connect(self.url)
        await self._conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        await self._conn.set_read_only(True)
        cur = await self._conn.execute("SELECT pg_current_snapshot()::text")
        self.visibility = Visibility.parse((await cur.fetchone())[0])
        return self.visibility

    async def next_rows(self, limit: int) -> tuple[TableInfo, int, list[tuple[Any, ...]]] | None:
        """``(table, index of the first row, up to limit rows)``; None once every table is read."""
        from psycopg import sql

        while self.table_index < len(self.tables):
            table = self.tables[self.table_index]
            if self._cursor is None:
                columns = sql.SQL(", ").join(
                    sql.SQL("{}::text").format(sql.Identifier(c)) for c in table.columns
                )
                self._cursor = self._conn.cursor(name="rs_cdc_snapshot")
                await self._cursor.execute(
                    sql.SQL("SELECT {} FROM {}").format(
                        columns, sql.Identifier(table.schema, table.table)
                    )
                )
                self.row_index = 0
            rows = await self._cursor.fetchmany(limit)
            if rows:
                first = self.row_index
                self.row_index += len(rows)
                return table, first, rows
            await self._cursor.close()
            self._cursor = None
            self.table_index += 1
        return None

    async def close(self) -> None:
        """End the transaction and close the connection."""
        conn, self._conn, self._cursor = self._conn, None, None
        if conn is not None:
            await conn.close()
