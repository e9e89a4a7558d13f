"""Moves a task's committed outputs from its outbox to their target partitions (Redis Cluster).

On a cluster the commit script runs in the task's input slot ``{T:i}`` and cannot append to
target partitions in other slots, so it appends each output to the task's outbox
(:meth:`RuntimeKeys.outbox`) with the target's address in front of the entry's wire fields::

    rs_target            full key of the target partition stream (rs:stream:{U:j})
    rs_target_topic      U
    rs_target_partition  j
    rs_maxlen            approximate MAXLEN of the target (0 = none)
    payload, content_type, key, headers?, ts   the entry exactly as the target gets it

A Redis sink's write is an outbox entry of its own::

    rs_target            the key written (any key: not a partition stream)
    rs_op                the command: HSET HDEL SADD SREM ZADD ZREM SET DEL
    rs_args              its arguments after the key, packed by :func:`pack_items`

:class:`OutboxForwarder` copies those entries to their targets with ``scripts/forward.lua``,
which runs in the target's slot and applies an entry only when its outbox id is above the
source task's high-water mark kept beside the target (:meth:`RuntimeKeys.forwarded`, or
:meth:`RuntimeKeys.forwarded_to` a sink's key: one mark per hash tag, so the entries of one
slot go in one call, in outbox order), then trims what it forwarded from the outbox.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from redis_streaming._redis.lua import LuaScript
from redis_streaming.errors import DecodeError
from redis_streaming.runtime.keys import RuntimeKeys

__all__ = ["OutboxForwarder", "pack_items", "unpack_items"]

_FORWARD = LuaScript("redis_streaming.runtime.scripts", "forward")
_TARGET = b"rs_target"
_TOPIC = b"rs_target_topic"
_PARTITION = b"rs_target_partition"
_MAXLEN = b"rs_maxlen"
_OP = b"rs_op"
_ARGS = b"rs_args"
_META = frozenset((_TARGET, _TOPIC, _PARTITION, _MAXLEN))
_MAX_SEQ = 2**64 - 1
_LENGTH = struct.Struct("<I")


def pack_items(items: Iterable[bytes]) -> bytes:
    """Strings as one value: each prefixed by its length (``<I``)."""
    return b"".join(_LENGTH.pack(len(item)) + item for item in items)


def unpack_items(data: bytes) -> list[bytes]:
    """The strings :func:`pack_items` packed."""
    items: list[bytes] = []
    at = 0
    while at < len(data):
        (size,) = _LENGTH.unpack_from(data, at)
        at += 4
        items.append(data[at : at + size])
        at += size
    return items


class _Run:
    """The outbox entries of one target slot (one high-water mark), oldest first, as the
    script's KEYS and ARGV tail."""

    __slots__ = ("args", "hwm_key", "keys", "maxlen", "stream")

    def __init__(self, hwm_key: str) -> None:
        self.hwm_key = hwm_key
        self.maxlen = 0
        self.stream: bytes | None = None
        self.keys: dict[bytes, int] = {}  # keys of sink writes -> their KEYS index
        self.args: list[Any] = []

    def key_index(self, key: bytes) -> int:
        index = self.keys.get(key)
        if index is None:
            index = self.keys[key] = len(self.keys) + 3
        return index

    def script_keys(self) -> list[Any]:
        return [self.stream or self.hwm_key, self.hwm_key, *self.keys]


class OutboxForwarder:
    """Forwards the outbox of one task (stage ``stage`` of job ``job`` on input partition
    ``topic:partition``) to its target partitions.

    Guarantees, also when two processes forward the same outbox at once (a zombie and the new
    owner of the task) and when a call fails midway and is repeated:

    - exactly once: each outbox entry is appended to its target (or, a sink write, applied to
      its key) once, never twice, never lost (an entry leaves the outbox only after);
    - order: the entries of one target (of one hash tag) are applied in outbox (commit) order;
    - the target entry holds the outbox entry's wire fields, in order, without the ``rs_`` ones.

    The high-water marks hash of a target keeps one field per source task that ever wrote to it.
    """

    __slots__ = ("job", "keys", "outbox", "redis", "source")

    def __init__(
        self, redis: Any, keys: RuntimeKeys, job: str, stage: str, topic: str, partition: int
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.job = job
        self.outbox = keys.outbox(topic, partition, stage)
        self.source = f"{stage}|{topic}:{partition}"

    async def forward(self, limit: int = 1000) -> int:
        """Forward up to ``limit`` of the oldest outbox entries, then trim them from the outbox.

        Returns the number of outbox entries handled (appended now, or found already appended
        by an earlier or concurrent call); ``limit`` means more may be waiting. Entries appended
        to the outbox meanwhile stay for the next call. Raises on a Redis error, leaving the
        outbox as it was for a retry (which appends nothing twice); raises
        :class:`~redis_streaming.errors.DecodeError` on an entry without the ``rs_`` fields.
        """
        entries = await self.redis.xrange(self.outbox, count=limit)
        if not entries:
            return 0
        runs: dict[str, _Run] = {}
        for entry_id, fields in entries:
            target = fields.get(_TARGET)
            op = fields.get(_OP)
            if op is not None and target is not None:  # a Redis sink's write
                run = self._run(runs, self.keys.forwarded_to(target.decode(), self.job))
                items = unpack_items(fields.get(_ARGS, b""))
                run.args += (entry_id, op, run.key_index(target), len(items), *items)
                continue
            if target is None or _TOPIC not in fields or _PARTITION not in fields:
                raise DecodeError(f"outbox {self.outbox} entry {entry_id!r} names no target")
            topic = fields[_TOPIC].decode()
            run = self._run(runs, self.keys.forwarded(topic, int(fields[_PARTITION]), self.job))
            if run.stream not in (None, target):  # one stream per hash tag and namespace
                raise DecodeError(f"outbox {self.outbox} entry {entry_id!r}: two streams, one tag")
            run.stream = target
            run.maxlen = int(fields.get(_MAXLEN) or 0)  # the newest entry's retention wins
            items = [
                x for name, value in fields.items() if name not in _META for x in (name, value)
            ]
            run.args += (entry_id, len(items), *items)
        calls = [(run.script_keys(), [self.source, run.maxlen, *run.args]) for run in runs.values()]
        await _FORWARD.run_pipelined(self.redis, calls)
        # Exact MINID (not ``~``): removes exactly the entries up to the last one read, all of
        # which are now in their targets; entries appended since have larger ids and stay.
        await self.redis.xtrim(self.outbox, minid=_after(entries[-1][0]), approximate=False)
        return len(entries)

    @staticmethod
    def _run(runs: dict[str, _Run], hwm_key: str) -> _Run:
        run = runs.get(hwm_key)
        if run is None:
            run = runs[hwm_key] = _Run(hwm_key)
        return run

    async def backlog(self) -> int:
        """The number of entries in the outbox not yet trimmed (committed, maybe not forwarded)."""
        return int(await self.redis.xlen(self.outbox))


def _after(entry_id: bytes | str) -> str:
    """The smallest stream id greater than ``entry_id``."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, seq = (int(x) for x in text.split("-"))
    return f"{ms + 1}-0" if seq == _MAX_SEQ else f"{ms}-{seq + 1}"
