"""Builds and runs the commit of one batch (``scripts/commit.lua``): one script call on the
input partition's slot that fences, deduplicates, writes state, appends outputs, applies Redis
sink writes and acknowledges.

Outputs and sink writes go straight to their target keys on a standalone server. On Redis
Cluster the targets live in other slots, so they go to the task's outbox (same slot) with
their target named in ``rs_target*`` (or ``rs_op``) fields; the
:class:`~redis_streaming.runtime.forwarder.OutboxForwarder` moves them on, deduplicated, in
order.

Durability (``mq.durability``): a level that waits adds its ``WAIT`` / ``WAITAOF`` right after
the script in the same pipeline (same connection, same round trip). A commit that is not
confirmed raises :class:`~redis_streaming.errors.DurabilityError` from :meth:`Committer.result`
after its status is known. The batch *is* committed on the master then; what a failover may
lose is the whole commit, acknowledgement included (one script, replicated as one unit, and a
replica holds a prefix of the master's writes), so its entries would be pending again on the
promoted replica and processed again: no loss, at most the batch's outputs twice. The task
treats the error as any failed step (logged, recorded as the stage's last error, backoff, start
over from what Redis holds), so a job never runs more than one batch ahead of its replicas.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from typing import Any

from redis_streaming._redis.lua import LuaScript
from redis_streaming.mq.durability import Durability
from redis_streaming.mq.producer import partition_for_key
from redis_streaming.mq.topics import TopicMeta
from redis_streaming.runtime.context import BatchRun
from redis_streaming.runtime.forwarder import pack_items
from redis_streaming.runtime.graph import Stage
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.runtime.wallclock import SYSTEM_CLOCK, Clock
from redis_streaming.state.cache import ABSENT

__all__ = ["COMMIT", "CLAIM", "Committer", "CommitResult"]

COMMIT = LuaScript("redis_streaming.runtime.scripts", "commit")
CLAIM = LuaScript("redis_streaming.runtime.scripts", "task_claim")
_HEADER = struct.Struct("<II").pack
_LENGTH = struct.Struct("<I").pack


def _pack_output(packed: list[bytes], index: int, maxlen: int, fields: Sequence[Any]) -> None:
    """Append one output as ``commit.lua`` unpacks it: its stream's KEYS index and field
    count, then MAXLEN and the fields as length-prefixed strings (ints in decimal, as redis-py
    would send them)."""
    packed.append(_HEADER(index, len(fields)))
    for item in (maxlen, *fields):
        data = item if isinstance(item, bytes) else str(item).encode()
        packed += (_LENGTH(len(data)), data)


def _pack_write(packed: list[bytes], index: int, op: str, items: Sequence[bytes]) -> None:
    """Append one Redis sink write as ``commit.lua`` unpacks it: its key's KEYS index and
    item count, then the command and its arguments as length-prefixed strings."""
    packed += (_HEADER(index, len(items) + 1), pack_items((op.encode(), *items)))


class CommitResult:
    """``status``: ``OK``, ``FENCED`` or ``ALREADY``; ``store_keys``: keys per written store."""

    __slots__ = ("status", "store_keys")

    def __init__(self, status: str, store_keys: dict[str, int]) -> None:
        self.status = status
        self.store_keys = store_keys


class Committer:
    """The commit calls of one task (one stage on one input partition)."""

    def __init__(
        self,
        keys: RuntimeKeys,
        stage: Stage,
        partition: int,
        consumer_id: str,
        targets: dict[str, TopicMeta],
        *,
        outbox: bool,
        clock: Clock = SYSTEM_CLOCK,
        durability: Durability | None = None,
    ) -> None:
        self.keys = keys
        self.clock = clock  # the commit's now: TTL expiries and sweeps, committed_ms
        self.durability = durability or Durability("leader", 1)
        self.waits = 0  # replies of the durability wait after the commit in the last pipeline
        self.stage = stage
        self.partition = partition
        self.consumer_id = consumer_id
        self.targets = targets
        self.outbox = keys.outbox(stage.topic, partition, stage.group) if outbox else None
        self.base = [
            keys.mq.lease(stage.topic, partition, stage.group),
            keys.task(stage.topic, partition, stage.group),
            keys.mq.stream(stage.topic, partition),
        ]
        self.timers = keys.timers(stage.topic, partition, stage.group)
        self.wall_timers = keys.wall_timers(stage.topic, partition, stage.group)
        self.ticks = 0  # ticks committed on the partition, as last read or committed
        self._rr = itertools.count(partition)
        self._stores = {
            name: (
                keys.state(stage.topic, partition, stage.job, name),
                keys.ttl(stage.topic, partition, stage.job, name),
            )
            for name in stage.stores
        }

    def store_keys(self, name: str) -> tuple[str, str]:
        """The hash and TTL index of store ``name`` on this partition."""
        return self._stores[name]

    def build(
        self, epoch: int, ids: Sequence[bytes], run: BatchRun
    ) -> tuple[list[str], list[Any], list[str]]:
        """The script's keys and args for a batch, and the names of the stores it writes."""
        keys = list(self.base)
        index: dict[str, int] = {}

        def key_index(key: str) -> int:
            i = index.get(key)
            if i is None:
                keys.append(key)
                i = index[key] = len(keys)
            return i

        args: list[Any] = [self.consumer_id, epoch, self.stage.group, self.clock.now_ms()]
        args.append(len(ids))
        if ids:
            args.extend(ids)
        else:  # a tick: the count it expects (commit.lua)
            args.append(self.ticks)
        sink_writes: list[bytes] = []
        if self.outbox is None:  # on a cluster they are outbox entries (below)
            for op, key, items in run.writes:
                _pack_write(sink_writes, key_index(key), op, items)
        args.append(len(run.writes) if sink_writes else 0)
        if sink_writes:
            args.append(b"".join(sink_writes))
        written: list[str] = []
        groups = list(run.state.by_store())
        args.append(len(groups))
        for store, writes in groups:
            hash_key, ttl_key = self._stores[store]
            written.append(store)
            args += (key_index(hash_key), key_index(ttl_key), len(writes))
            for field, write in writes:
                if write.value is ABSENT:
                    args += ("d", field)
                else:
                    args += ("s", field, write.value, write.ttl_ms or 0)
        args.append(len(self._stores))
        for hash_key, ttl_key in self._stores.values():
            args += (key_index(hash_key), key_index(ttl_key))
        packed: list[bytes] = []
        for out in run.outputs:
            meta = self.targets[out.topic]
            if out.key is not None:
                p = partition_for_key(out.key, meta.partitions)
            else:
                p = next(self._rr) % meta.partitions
            stream = self.keys.mq.stream(out.topic, p)
            if self.outbox is None:
                _pack_output(packed, key_index(stream), meta.retention_max_len, out.fields)
            else:
                route = ("rs_target", stream, "rs_target_topic", out.topic,
                         "rs_target_partition", p, "rs_maxlen", meta.retention_max_len)  # fmt: skip
                _pack_output(packed, key_index(self.outbox), 0, [*route, *out.fields])
        if self.outbox is not None:  # sink writes: outbox entries, applied by the forwarder
            for op, key, items in run.writes:
                sink_route = ("rs_target", key, "rs_op", op, "rs_args", pack_items(items))
                _pack_output(packed, key_index(self.outbox), 0, sink_route)
        args.append(len(run.outputs) + (len(run.writes) if self.outbox is not None else 0))
        if packed:
            args.append(b"".join(packed))
        changed = [
            (key, *timers.writes())
            for key, timers in ((self.timers, run.timers), (self.wall_timers, run.wall_timers))
            if timers.changes
        ]
        args.append(len(changed))
        for key, put, gone in changed:
            args += (key_index(key), len(put))
            for member, at in put:
                args += (member, at)
            args.append(len(gone))
            args.extend(gone)
        clock = run.clock
        if clock.max_ts is not None and (clock.max_ts, clock.floor) != (
            clock.base.max_ts,
            clock.base.floor,
        ):
            args += ("c", clock.max_ts, clock.floor)
        else:
            args.append("-")
        return keys, args, written

    async def claim(self, redis: Any) -> int:
        """Start a task: the new epoch, or 0 when this consumer does not hold the lease. (First,
        once, that the server supports the durability level: ``aof`` needs WAITAOF.)"""
        await self.durability.ensure(redis)
        return int(await CLAIM(redis, self.base[:2], [self.consumer_id]))

    def queue(
        self, pipe: Any, redis: Any, epoch: int, ids: Sequence[bytes], run: BatchRun
    ) -> list[str]:
        """Add the commit of a batch, and the durability wait after it, to a (non-transactional)
        pipeline of ``redis``; returns the names of the stores it writes, for :meth:`result`,
        which takes the pipeline's replies from the commit's on. The script must be loaded
        (NOSCRIPT)."""
        keys, args, written = self.build(epoch, ids, run)
        COMMIT.queue(pipe, keys, args)
        self.waits = self.durability.queue(pipe, redis, keys[:1])
        return written

    @property
    def replies(self) -> int:
        """How many replies the last queued commit takes in its pipeline (1 + its waits)."""
        return 1 + self.waits

    def result(self, replies: Sequence[Any], written: list[str]) -> CommitResult:
        """The :class:`CommitResult` of a queued commit's replies (the commit's first). A
        ``FENCED`` or ``ALREADY`` commit wrote nothing to wait for; an ``OK`` one whose wait
        falls short raises :class:`~redis_streaming.errors.DurabilityError`."""
        reply = replies[0]
        status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if status == "OK":
            self.durability.check(
                replies[1 : 1 + self.waits],
                f"committing a batch of job stage {self.stage.group!r} on partition "
                f"{self.partition}",
                1,
            )
        return CommitResult(status, dict(zip(written, map(int, reply[1:]), strict=False)))

    async def commit(
        self, redis: Any, epoch: int, ids: Sequence[bytes], run: BatchRun
    ) -> CommitResult:
        """Run the commit of a batch on its own (with its durability wait)."""
        if not self.durability.waits:
            keys, args, written = self.build(epoch, ids, run)
            self.waits = 0
            return self.result([await COMMIT(redis, keys, args)], written)
        await COMMIT.load(redis)
        pipe = redis.pipeline(transaction=False)
        written = self.queue(pipe, redis, epoch, ids, run)
        return self.result(await pipe.execute(), written)
