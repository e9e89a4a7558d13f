"""PostgreSQL change data capture as a :class:`~redis_streaming.source.Source`."""

from __future__ import annotations

import json
import re
from typing import Any

from redis_streaming.cdc import catalog
from redis_streaming.cdc.catalog import TableInfo
from redis_streaming.cdc.changes import ConversionError, message_key, row_dict
from redis_streaming.cdc.snapshot import SnapshotReader, Visibility
from redis_streaming.cdc.stream import StreamDecoder, position_lsn
from redis_streaming.errors import ConfigurationError, SourceError
from redis_streaming.source.base import SourceBatch, SourceRecord
from redis_streaming.source.positions import hex_number

__all__ = ["PostgresCdcSource"]

_PEEK = (
    "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, %s, "
    "'proto_version', '1', 'publication_names', %s)"
)
_DONE = "FFFF" + "F" * 12  # table and row part of the snapshot's end position


class _UnknownTable(Exception):
    pass


class PostgresCdcSource:
    """Inserts, updates and deletes of the tables of ``publication``, read through the logical
    replication slot ``slot`` (plugin ``pgoutput``) with SQL functions, after an initial snapshot.

    Records go to topic ``<topic_prefix>.<schema>.<table>``, keyed by primary key, with the
    value described in :mod:`redis_streaming.cdc.changes` (``typed``: booleans, numbers and
    json as such; else every value is text). The slot is created when missing before the
    snapshot; it advances only on :meth:`ack`, i.e. once the changes are in Redis. The
    publication is created for ``tables`` when missing. Run it with a
    :class:`~redis_streaming.source.SourceRunner` (``topic=None``): exactly once into the topics.

    Errors: wal_level not logical, a table without primary key, no publication and no
    ``tables``: ConfigurationError. The slot or the publication dropped while streaming:
    SourceError (changes may be lost; reset the source to take a new snapshot). A crash during
    the snapshot starts the snapshot again (its rows are appended again, op ``snapshot``).
    """

    def __init__(
        self,
        url: str,
        *,
        slot: str = "redis_streaming",
        publication: str = "redis_streaming",
        tables: list[str] | None = None,
        topic_prefix: str = "pg",
        typed: bool = True,
    ) -> None:
        self.url = url
        self.slot = _check("slot", slot)
        self.publication = _check("publication", publication)
        self.table_names = list(tables or [])
        self.topic_prefix = topic_prefix
        self.typed = typed
        self.tables: dict[str, TableInfo] = {}
        self._conn: Any = None
        self._snapshot: SnapshotReader | None = None
        self._generation = 0
        self._visibility: Visibility | None = None
        self._decoder: StreamDecoder | None = None

    @property
    def meta(self) -> str | None:
        """The snapshot's generation and visibility (decides which transactions to skip)."""
        visibility = None if self._visibility is None else str(self._visibility)
        return json.dumps({"generation": self._generation, "snapshot": visibility})

    async def open(self, position: str | None, meta: str | None) -> None:
        """Connect; create the publication and the slot if needed; start (or restart) the
        snapshot unless ``position`` is past it."""
        import psycopg

        self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        await catalog.require_logical(self._conn)
        await catalog.create_publication(self._conn, self.publication, self.table_names)
        self.tables = await catalog.load_tables(self._conn, self.publication, self.topic_prefix)
        stored = json.loads(meta) if meta else {}
        snapshot_done = position is not None and (position[0] == "1" or position[5:] == _DONE)
        if not await catalog.slot_exists(self._conn, self.slot):
            if snapshot_done:
                raise SourceError(
                    f"replication slot {self.slot!r} does not exist (dropped?) although the "
                    f"source is past its snapshot (position {position}): changes since then "
                    "may be lost; reset the source (delete its position) to take a new snapshot"
                )
            await self._conn.execute(
                "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [self.slot]
            )
        if snapshot_done:
            self._generation = int(stored.get("generation", 0))
            text = stored.get("snapshot")
            self._visibility = Visibility.parse(text) if text else None
        else:
            self._generation = int(stored.get("generation", -1)) + 1 if position else 0
            self._snapshot = SnapshotReader(self.url, list(self.tables.values()))
            self._visibility = await self._snapshot.begin()
        self._decoder = StreamDecoder(self._table, self._visibility, self.typed, self.topic_prefix)

    def _table(self, name: str) -> TableInfo:
        table = self.tables.get(name)
        if table is None:
            raise _UnknownTable(name)
        return table

    async def read(self, after: str | None, limit: int) -> SourceBatch:
        """The next snapshot rows, else the changes of the next whole transactions."""
        if self._snapshot is not None:
            return await self._read_snapshot(limit)
        return await self._read_stream(after, limit)

    async def _read_snapshot(self, limit: int) -> SourceBatch:
        assert self._snapshot is not None
        chunk = await self._snapshot.next_rows(limit)
        prefix = "0" + hex_number(self._generation, 4)
        if chunk is None:
            await self._snapshot.close()
            self._snapshot = None
            return SourceBatch([], prefix + _DONE)
        table, first, rows = chunk
        records = []
        for i, row in enumerate(rows):
            position = (
                prefix + hex_number(self._snapshot.table_index, 4) + hex_number(first + i, 12)
            )
            records.append(self._snapshot_record(table, position, row))
        return SourceBatch(records, records[-1].position)

    def _snapshot_record(self, table: TableInfo, position: str, row: Any) -> SourceRecord:
        topic = f"{self.topic_prefix}.{table.name}"
        error = None
        try:
            after, _ = row_dict(table.columns, table.type_oids, row, self.typed)
        except ConversionError as exc:
            after, error = dict(zip(table.columns, row, strict=True)), f"table {table.name}: {exc}"
        key_text, key = message_key(table.primary_key, after)
        value = {"op": "snapshot", "table": table.name, "key": key, "before": None,
                 "after": after, "lsn": None, "commit_ts": None, "xid": None}  # fmt: skip
        return SourceRecord(position, value, key_text, topic, error=error)

    async def _read_stream(self, after: str | None, limit: int) -> SourceBatch:
        from psycopg import errors

        assert self._decoder is not None
        cur = await self._conn.execute("SELECT pg_current_wal_flush_lsn()::text")
        flushed = _parse_lsn((await cur.fetchone())[0])
        try:
            cur = await self._conn.execute(_PEEK, [self.slot, limit, self.publication])
            rows = [r[0] for r in await cur.fetchall()]
        except errors.UndefinedObject as exc:
            raise SourceError(
                f"CDC cannot read slot {self.slot!r} with publication {self.publication!r}: "
                f"{exc}; changes may be lost: recreate what was dropped and reset the source "
                "(delete its position) to take a new snapshot"
            ) from exc
        try:
            records, reached = self._decoder.decode(rows, after)
        except _UnknownTable:  # a table added to the publication since open
            self.tables = await catalog.load_tables(self._conn, self.publication, self.topic_prefix)
            records, reached = self._decoder.decode(rows, after)
        if len(rows) < limit and flushed > 0:
            # Decoding reached the end of the WAL: every commit before `flushed` was seen.
            idle = "1" + hex_number(flushed - 1) + "FFFFFFFF"
            reached = max(reached or idle, idle)
        return SourceBatch(records, reached)

    async def ack(self, position: str) -> None:
        """Advance the slot past the transactions wholly at or before ``position``."""
        lsn = position_lsn(position)
        if lsn is None or self._conn is None:
            return
        target = f"{(lsn + 1) >> 32:X}/{(lsn + 1) & 0xFFFFFFFF:X}"
        cur = await self._conn.execute(
            "SELECT pg_replication_slot_advance(slot_name, %s::pg_lsn) FROM pg_replication_slots"
            " WHERE slot_name = %s AND confirmed_flush_lsn < %s::pg_lsn",
            [target, self.slot, target],
        )
        await cur.fetchall()

    async def close(self) -> None:
        """Close the snapshot transaction and the connection."""
        if self._snapshot is not None:
            await self._snapshot.close()
            self._snapshot = None
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


def _parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def _check(kind: str, name: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]{1,63}", name):
        raise ConfigurationError(
            f"CDC {kind} name {name!r}: use 1 to 63 characters from a-z, 0-9 and '_'"
        )
    return name
