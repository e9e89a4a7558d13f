"""A parser of the ``pgoutput`` logical replication messages (protocol version 1).

Reference: PostgreSQL, "Logical Replication Message Formats". Integers are big-endian; strings
are NUL-terminated; tuple values come as text (``t``), NULL (``n``) or unchanged TOASTed (``u``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from redis_streaming.errors import DecodeError

__all__ = [
    "UNCHANGED",
    "Begin",
    "Column",
    "Commit",
    "Delete",
    "Insert",
    "Origin",
    "Relation",
    "Truncate",
    "TypeMessage",
    "Update",
    "parse",
]

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01


class _Unchanged:
    """An unchanged TOASTed value: the message does not carry it."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()
Tuple = list[str | _Unchanged | None]


@dataclass(slots=True, frozen=True)
class Begin:
    """A transaction starts. ``final_lsn``: its commit record's LSN; ``commit_ts_us``: epoch µs."""

    final_lsn: int
    commit_ts_us: int
    xid: int


@dataclass(slots=True, frozen=True)
class Commit:
    """A transaction ends (``commit_lsn``, ``end_lsn``, ``commit_ts_us`` epoch µs)."""

    commit_lsn: int
    end_lsn: int
    commit_ts_us: int


@dataclass(slots=True, frozen=True)
class Origin:
    """The transaction was replicated from ``name`` (at ``lsn`` there)."""

    lsn: int
    name: str


@dataclass(slots=True, frozen=True)
class Column:
    """A column: ``key`` when part of the replica identity; ``type_oid`` its type."""

    key: bool
    name: str
    type_oid: int
    typmod: int


@dataclass(slots=True, frozen=True)
class Relation:
    """A table's shape, sent before its first change in a decoding session."""

    relation_id: int
    schema: str
    table: str
    replica_identity: str
    columns: tuple[Column, ...]


@dataclass(slots=True, frozen=True)
class TypeMessage:
    """A user-defined type used by a later relation."""

    type_oid: int
    schema: str
    name: str


@dataclass(slots=True, frozen=True)
class Insert:
    """A row was inserted (``new`` values, in column order)."""

    relation_id: int
    new: Tuple


@dataclass(slots=True, frozen=True)
class Update:
    """A row was updated; ``old`` (identity key ``K`` or full row ``O``) when sent, else None."""

    relation_id: int
    old: Tuple | None
    new: Tuple


@dataclass(slots=True, frozen=True)
class Delete:
    """A row was deleted; ``old`` holds its identity key (or full row)."""

    relation_id: int
    old: Tuple


@dataclass(slots=True, frozen=True)
class Truncate:
    """Tables were truncated (``cascade``, ``restart_identity``)."""

    relation_ids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


Message = Begin | Commit | Origin | Relation | TypeMessage | Insert | Update | Delete | Truncate


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 1  # after the message type byte

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def byte(self) -> str:
        value = self.data[self.pos : self.pos + 1].decode()
        self.pos += 1
        return value

    def string(self) -> str:
        end = self.data.index(b"\0", self.pos)
        value = self.data[self.pos : end].decode()
        self.pos = end + 1
        return value

    def tuple(self) -> Tuple:
        (n,) = self.unpack(">h")
        values: Tuple = []
        for _ in range(n):
            kind = self.byte()
            if kind == "t":
                (length,) = self.unpack(">i")
                values.append(self.data[self.pos : self.pos + length].decode())
                self.pos += length
            elif kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            else:
                raise DecodeError(f"pgoutput: unsupported tuple value kind {kind!r}")
        return values


def _us(pg_ts: int) -> int:
    return pg_ts + PG_EPOCH_US


def parse(data: bytes) -> Message | None:
    """One message; None for kinds a consumer ignores (logical decoding messages, streaming).
    Raises :class:`DecodeError` for malformed data."""
    try:
        return _parse(data)
    except (struct.error, ValueError, IndexError) as exc:
        raise DecodeError(f"malformed pgoutput message {data[:40]!r}: {exc}") from exc


def _parse(data: bytes) -> Message | None:
    kind = data[:1]
    r = _Reader(data)
    if kind == b"B":
        lsn, ts, xid = r.unpack(">qqI")
        return Begin(lsn, _us(ts), xid)
    if kind == b"C":
        _flags, lsn, end, ts = r.unpack(">bqqq")
        return Commit(lsn, end, _us(ts))
    if kind == b"O":
        (lsn,) = r.unpack(">q")
        return Origin(lsn, r.string())
    if kind == b"R":
        (rel,) = r.unpack(">I")
        schema, table = r.string(), r.string()
        identity = r.byte()
        (n,) = r.unpack(">h")
        columns = []
        for _ in range(n):
            (flags,) = r.unpack(">b")
            name = r.string()
            oid, typmod = r.unpack(">Ii")
            columns.append(Column(bool(flags & 1), name, oid, typmod))
        return Relation(rel, schema, table, identity, tuple(columns))
    if kind == b"Y":
        (oid,) = r.unpack(">I")
        return TypeMessage(oid, r.string(), r.string())
    if kind == b"I":
        (rel,) = r.unpack(">I")
        r.byte()  # 'N'
        return Insert(rel, r.tuple())
    if kind == b"U":
        (rel,) = r.unpack(">I")
        old = None
        marker = r.byte()
        if marker in ("K", "O"):
            old = r.tuple()
            marker = r.byte()
        if marker != "N":
            raise DecodeError(f"pgoutput: update without a new tuple (got {marker!r})")
        return Update(rel, old, r.tuple())
    if kind == b"D":
        (rel,) = r.unpack(">I")
        r.byte()  # 'K' or 'O'
        return Delete(rel, r.tuple())
    if kind == b"T":
        n, options = r.unpack(">Ib")
        relations = r.unpack(f">{n}I")
        return Truncate(tuple(relations), bool(options & 1), bool(options & 2))
    if kind in (b"M", b"S", b"E", b"c", b"A"):
        return None
    raise DecodeError(f"pgoutput: unknown message type {kind!r}")
