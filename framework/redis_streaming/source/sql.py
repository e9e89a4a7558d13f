"""A polling SQL source (PostgreSQL, psycopg 3): rows in the order of an incrementing column, or
of a timestamp column with an integer tie-break column.

Needs the ``postgres`` extra (psycopg). Only rows whose ordering value is above the last one read
are seen: a row that commits later with a lower value (an id taken by a transaction that
commits after a later one, a timestamp set before a slow commit) is missed. ``lag_s`` (timestamp
mode) reads only rows older than that, which covers transactions shorter than it. For every
change without such gaps, use logical decoding (:mod:`redis_streaming.cdc`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from redis_streaming.errors import ConfigurationError
from redis_streaming.source.base import SourceBatch, SourceRecord
from redis_streaming.source.positions import DECIMAL_WIDTH, decimal, parse_decimal

__all__ = ["SqlPollingSource"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _micros(value: Any) -> int:
    if not isinstance(value, dt.datetime):
        raise ConfigurationError(f"the timestamp column holds {value!r}, not a timestamp")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # the session's TimeZone is UTC
    return int((value - _EPOCH) // dt.timedelta(microseconds=1))


class SqlPollingSource:
    """Rows of ``table`` (``"schema.table"`` or ``"table"``) or of ``query`` (a SELECT, used as a
    subquery) after the stored position, as records with the row as a dict.

    Incrementing mode (``tie_breaker`` None): ``column`` is a non-negative integer that grows
    with every new row; position = its value. Timestamp mode: ``column`` is a ``timestamp`` or
    ``timestamptz`` (naive values are UTC) and ``tie_breaker`` a non-negative integer column
    ordering rows with equal timestamps; position = both. ``key``: the column giving the
    message key (default: ``tie_breaker``, else ``column``). Exactly-once into the topic with a
    :class:`~redis_streaming.source.SourceRunner`, for the rows it sees (see the module's note
    on rows committed out of order).
    """

    def __init__(
        self,
        url: str,
        *,
        column: str,
        table: str | None = None,
        query: str | None = None,
        tie_breaker: str | None = None,
        key: str | None = None,
        lag_s: float = 0.0,
        topic: str | None = None,
    ) -> None:
        if (table is None) == (query is None):
            raise ConfigurationError("SqlPollingSource needs exactly one of table= or query=")
        if lag_s < 0:
            raise ConfigurationError(f"lag_s must be >= 0, got {lag_s}")
        self.url = url
        self.table = table
        self.query = query
        self.column = column
        self.tie_breaker = tie_breaker
        self.key = key or tie_breaker or column
        self.lag_s = lag_s
        self.topic = topic
        self._conn: Any = None

    @property
    def meta(self) -> str | None:
        """Nothing beyond the position."""
        return None

    async def open(self, position: str | None, meta: str | None) -> None:
        """Connect (autocommit, session time zone UTC)."""
        import psycopg  # the postgres extra

        self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        await self._conn.execute("SET TimeZone = 'UTC'")

    def _statement(self, after: str | None) -> tuple[Any, list[Any]]:
        from psycopg import sql

        if self.table is not None:
            source = sql.SQL("{}").format(sql.Identifier(*self.table.split(".")))
        else:
            source = sql.SQL("({}) AS src").format(sql.SQL(self.query))  # type: ignore[arg-type]
        col = sql.Identifier(self.column)
        where: list[Any] = []
        params: list[Any] = []
        order: Any = col
        if self.tie_breaker is None:
            if after is not None:
                where.append(sql.SQL("{} > %s").format(col))
                params.append(parse_decimal(after))
        else:
            tie = sql.Identifier(self.tie_breaker)
            order = sql.SQL("{}, {}").format(col, tie)
            if after is not None:
                micros = parse_decimal(after[:DECIMAL_WIDTH])
                where.append(sql.SQL("({}, {}) > (%s, %s)").format(col, tie))
                params += (_EPOCH + dt.timedelta(microseconds=micros), parse_decimal(after[20:]))
            if self.lag_s:
                where.append(sql.SQL("{} <= now() - make_interval(secs => %s)").format(col))
                params.append(self.lag_s)
        condition = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL("")
        statement = sql.SQL("SELECT * FROM {}{} ORDER BY {} LIMIT %s").format(
            source, condition, order
        )
        return statement, params

    def _position(self, row: dict[str, Any]) -> str:
        try:
            if self.tie_breaker is None:
                return decimal(row[self.column])
            return decimal(_micros(row[self.column])) + decimal(row[self.tie_breaker])
        except KeyError as exc:
            raise ConfigurationError(f"the rows have no column {exc}") from exc

    async def read(self, after: str | None, limit: int) -> SourceBatch:
        """The next ``limit`` rows after ``after``, in position order."""
        from psycopg import errors
        from psycopg.rows import dict_row

        statement, params = self._statement(after)
        try:
            async with self._conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(statement, [*params, limit])
                rows = await cur.fetchall()
        except (errors.UndefinedTable, errors.UndefinedColumn, errors.SyntaxError) as exc:
            raise ConfigurationError(f"SqlPollingSource: {exc}".strip()) from exc
        records = []
        for row in rows:
            key = row.get(self.key)
            records.append(
                SourceRecord(
                    self._position(row), row, None if key is None else str(key), self.topic
                )
            )
        return SourceBatch(records)

    async def ack(self, position: str) -> None:
        """Nothing to release: the rows stay in the table."""

    async def close(self) -> None:
        """Close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
