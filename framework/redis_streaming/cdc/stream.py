"""Turns the pgoutput messages of whole transactions into source records with LSN positions.

Streaming position: ``"1"`` + commit LSN (16 hex digits) + the change's index in its transaction
(8 hex digits); a transaction's end is its commit LSN + ``FFFFFFFF``, so a position says which
transactions are wholly in Redis. Snapshot positions start with ``"0"`` and sort before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from redis_streaming.cdc import pgoutput as pg
from redis_streaming.cdc.catalog import TableInfo
from redis_streaming.cdc.changes import ConversionError, format_lsn, message_key, row_dict
from redis_streaming.cdc.snapshot import Visibility
from redis_streaming.errors import SourceError
from redis_streaming.source.base import SourceRecord
from redis_streaming.source.positions import hex_number

__all__ = ["StreamDecoder", "end_position", "position_lsn"]

_END = "FFFFFFFF"


def end_position(commit_lsn: int) -> str:
    """The position of the end of the transaction that committed at ``commit_lsn``."""
    return "1" + hex_number(commit_lsn) + _END


def position_lsn(position: str) -> int | None:
    """The commit LSN in a streaming position (None for a snapshot position)."""
    return int(position[1:17], 16) if position.startswith("1") else None


def op_of(message: pg.Insert | pg.Update | pg.Delete) -> str:
    """``insert``, ``update`` or ``delete``."""
    if isinstance(message, pg.Insert):
        return "insert"
    return "update" if isinstance(message, pg.Update) else "delete"


class StreamDecoder:
    """Decodes peeked ``(data)`` rows; keeps the relations of the decoding session."""

    def __init__(
        self,
        tables: Callable[[str], TableInfo],
        visibility: Visibility | None,
        typed: bool,
        topic_prefix: str,
    ) -> None:
        self.tables = tables
        self.visibility = visibility
        self.typed = typed
        self.prefix = topic_prefix
        self.relations: dict[int, pg.Relation] = {}
        self.skipped_transactions = 0

    def decode(
        self, messages: Iterable[bytes], after: str | None
    ) -> tuple[list[SourceRecord], str | None]:
        """Records of the complete transactions above ``after``, and the end position of the
        last complete transaction (None when there was none)."""
        records: list[SourceRecord] = []
        reached = None
        begin: pg.Begin | None = None
        pending: list[SourceRecord] = []
        skip = False
        for data in messages:
            message = pg.parse(bytes(data))
            if isinstance(message, pg.Relation):
                self.relations[message.relation_id] = message
            elif isinstance(message, pg.Begin):
                begin, pending = message, []
                end = end_position(message.final_lsn)
                skip = after is not None and end <= after
                if not skip and self.visibility and self.visibility.visible(message.xid):
                    skip = True  # already in the snapshot
                    self.skipped_transactions += 1
            elif isinstance(message, pg.Commit):
                if begin is None:
                    raise SourceError("pgoutput: a commit without its begin")
                if not skip:
                    records += pending
                reached = end_position(message.commit_lsn)
                begin, pending = None, []
            elif begin is not None and not skip:
                pending += self._changes(message, begin, len(pending))
        return records, reached

    def _changes(self, message: Any, begin: pg.Begin, index: int) -> list[SourceRecord]:
        if isinstance(message, pg.Truncate):
            return [
                self._record(begin, index + i, self.relations[r], "truncate", None, None, [], None)
                for i, r in enumerate(message.relation_ids)
            ]
        if not isinstance(message, pg.Insert | pg.Update | pg.Delete):
            return []  # Origin, Type: nothing to emit
        relation = self.relations.get(message.relation_id)
        if relation is None:
            raise SourceError(f"pgoutput: change of unknown relation {message.relation_id}")
        table = self.tables(f"{relation.schema}.{relation.table}")
        names = [c.name for c in relation.columns]
        oids = [c.type_oid for c in relation.columns]
        identity = frozenset(c.name for c in relation.columns if c.key)
        try:
            before = after = None
            unchanged: list[str] = []
            if isinstance(message, pg.Insert | pg.Update):
                after, unchanged = row_dict(names, oids, message.new, self.typed)
            old = message.old if isinstance(message, pg.Update | pg.Delete) else None
            if old is not None:
                only = None if relation.replica_identity == "f" else identity
                before, _ = row_dict(names, oids, old, self.typed, only)
            record = self._record(
                begin, index, relation, op_of(message), before, after, unchanged, table
            )
        except ConversionError as exc:
            values = message.old if isinstance(message, pg.Delete) else message.new
            raw = {n: v for n, v in zip(names, values, strict=True) if v is not pg.UNCHANGED}
            record = self._record(begin, index, relation, op_of(message), None, raw, [], table)
            record.error = f"table {table.name}: {exc}"
        return [record]

    def _record(
        self,
        begin: pg.Begin,
        index: int,
        relation: pg.Relation,
        op: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        unchanged: list[str],
        table: TableInfo | None,
    ) -> SourceRecord:
        name = f"{relation.schema}.{relation.table}"
        key_text, key = None, None
        if table is not None:
            key_text, key = message_key(
                table.primary_key, after if after is not None else before or {}
            )
        value: dict[str, Any] = {
            "op": op, "table": name, "key": key, "before": before, "after": after,
            "lsn": format_lsn(begin.final_lsn), "commit_ts": begin.commit_ts_us // 1000,
            "xid": begin.xid,
        }  # fmt: skip
        if unchanged:
            value["unchanged"] = unchanged
        position = "1" + hex_number(begin.final_lsn) + hex_number(index, 8)
        return SourceRecord(
            position, value, key_text, f"{self.prefix}.{name}", broadcast=op == "truncate"
        )
