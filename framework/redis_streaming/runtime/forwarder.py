"""Moves a task's committed outputs from its outbox to their target partitions (Redis Cluster).

On a cluster the commit script runs in the task's input slot ``{T:i}`` and cannot append to
target partitions in other slots, so it appends each output to the task's outbox
(:meth:`RuntimeKeys.outbox`) with the target's address in front of the entry's wire fields::

    rs_target            full key of the target partition stream (rs:stream:{U:j})
    rs_target_topic      U
    rs_target_partition  j
    rs_maxlen            approximate MAXLEN of the target (0 = none)
    payload, content_type, key, headers?, ts   the entry exactly as the target gets it

:class:`OutboxForwarder` copies those entries to their targets with ``scripts/forward.lua``,
which runs in the target's slot and appends an entry only when its outbox id is above the
source task's high-water mark kept beside the target (:meth:`RuntimeKeys.forwarded`), then
trims what it forwarded from the outbox.
"""

from __future__ import annotations

from typing import Any

from redis_streaming._redis.lua import LuaScript
from redis_streaming.errors import DecodeError
from redis_streaming.runtime.keys import RuntimeKeys

__all__ = ["OutboxForwarder"]

_FORWARD = LuaScript("redis_streaming.runtime.scripts", "forward")
_TARGET = b"rs_target"
_TOPIC = b"rs_target_topic"
_PARTITION = b"rs_target_partition"
_MAXLEN = b"rs_maxlen"
_META = frozenset((_TARGET, _TOPIC, _PARTITION, _MAXLEN))
_MAX_SEQ = 2**64 - 1


class _Run:
    """The outbox entries of one target, oldest first, as the script's ARGV tail."""

    __slots__ = ("args", "hwm_key", "maxlen")

    def __init__(self, hwm_key: str) -> None:
        self.hwm_key = hwm_key
        self.maxlen = 0
        self.args: list[Any] = []


class OutboxForwarder:
    """Forwards the outbox of one task (stage ``stage`` of job ``job`` on input partition
    ``topic:partition``) to its target partitions.

    Guarantees, also when two processes forward the same outbox at once (a zombie and the new
    owner of the task) and when a call fails midway and is repeated:

    - exactly once: each outbox entry is appended to its target once, never twice, never lost
      (an entry leaves the outbox only after its target holds it);
    - order: the entries of one target are appended in outbox (commit) order;
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
        runs: dict[bytes, _Run] = {}
        for entry_id, fields in entries:
            target = fields.get(_TARGET)
            if target is None or _TOPIC not in fields or _PARTITION not in fields:
                raise DecodeError(f"outbox {self.outbox} entry {entry_id!r} names no target")
            run = runs.get(target)
            if run is None:
                topic = fields[_TOPIC].decode()
                hwm_key = self.keys.forwarded(topic, int(fields[_PARTITION]), self.job)
                run = runs[target] = _Run(hwm_key)
            run.maxlen = int(fields.get(_MAXLEN) or 0)  # the newest entry's retention wins
            items = [
                x for name, value in fields.items() if name not in _META for x in (name, value)
            ]
            run.args += (entry_id, len(items), *items)
        calls = [
            ([target.decode(), run.hwm_key], [self.source, run.maxlen, *run.args])
            for target, run in runs.items()
        ]
        await _FORWARD.run_pipelined(self.redis, calls)
        # Exact MINID (not ``~``): removes exactly the entries up to the last one read, all of
        # which are now in their targets; entries appended since have larger ids and stay.
        await self.redis.xtrim(self.outbox, minid=_after(entries[-1][0]), approximate=False)
        return len(entries)

    async def backlog(self) -> int:
        """The number of entries in the outbox not yet trimmed (committed, maybe not forwarded)."""
        return int(await self.redis.xlen(self.outbox))


def _after(entry_id: bytes | str) -> str:
    """The smallest stream id greater than ``entry_id``."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, seq = (int(x) for x in text.split("-"))
    return f"{ms + 1}-0" if seq == _MAX_SEQ else f"{ms}-{seq + 1}"
