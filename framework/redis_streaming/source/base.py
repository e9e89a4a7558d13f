"""The ``Source`` protocol: an external reader whose records carry a totally ordered position.

A position is a string that sorts bytewise in the records' order (fixed-width, zero-padded
digits: :mod:`redis_streaming.source.positions`), because the append script in Redis compares
positions as bytes to append each record at most once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from redis_streaming.errors import InvalidArgument

__all__ = ["POSITION_PATTERN", "Source", "SourceBatch", "SourceRecord", "check_position"]

POSITION_PATTERN = re.compile(r"[0-9A-Za-z._:-]{1,200}")


def check_position(position: str) -> str:
    """``position`` if it is 1 to 200 ASCII letters, digits or ``._:-``; else InvalidArgument."""
    if not isinstance(position, str) or not POSITION_PATTERN.fullmatch(position):
        raise InvalidArgument(
            f"source position {position!r} must be 1-200 characters of [0-9A-Za-z._:-] that sort "
            "bytewise in record order (use redis_streaming.source.positions to build them)"
        )
    return position


@dataclass(slots=True)
class SourceRecord:
    """One record read from a source.

    ``position``: strictly greater (bytewise) than every earlier record's. ``value``: the
    payload (JSON-able, str or bytes, encoded as by the producer). ``key``: the message key
    (picks the partition, as ``partition_for_key``). ``topic``: overrides the runner's topic.
    ``broadcast``: append the record to every partition of its topic (e.g. a truncate that
    concerns every key). ``error``: the record could not be converted; it goes to the topic's
    dead letters with this reason instead of the topic.
    """

    position: str
    value: Any
    key: str | None = None
    topic: str | None = None
    headers: dict[str, str] | None = None
    broadcast: bool = False
    error: str | None = None


@dataclass(slots=True)
class SourceBatch:
    """What one read returned: ``records`` in position order, and ``position``, the position
    the source has reached with them (at or above the last record's; above it when the source
    passed over things it does not emit, so that they are acknowledged too). ``position`` None
    means no progress."""

    records: list[SourceRecord] = field(default_factory=list)
    position: str | None = None


@runtime_checkable
class Source(Protocol):
    """An external reader driven by a :class:`~redis_streaming.source.SourceRunner`.

    The runner calls :meth:`open` with the stored position and meta (None the first time), then
    repeatedly :meth:`read` (records after ``after``), appends them, stores the batch's position
    and :attr:`meta` in Redis, and calls :meth:`ack` with it: from then on the source may
    release what is at or before it (advance a replication slot, delete rows). :meth:`close`
    ends it (also after an error; the runner opens it again to retry). A source raises
    ``SourceError`` or ``ConfigurationError`` for what retrying cannot fix, anything else for a
    passing failure.
    """

    async def open(self, position: str | None, meta: str | None) -> None:
        """Connect; resume after ``position`` with ``meta`` as stored with it."""
        ...

    async def read(self, after: str | None, limit: int) -> SourceBatch:
        """Up to about ``limit`` records after ``after``; an empty batch when there are none."""
        ...

    @property
    def meta(self) -> str | None:
        """The source's context, stored beside every position (None: nothing to store)."""
        ...

    async def ack(self, position: str) -> None:
        """Everything at or before ``position`` is durably in Redis."""
        ...

    async def close(self) -> None:
        """Release connections; may be called more than once."""
        ...
