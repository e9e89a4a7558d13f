"""Sinks in a stage: the terminal nodes ``stream.sink(sink)`` adds, and the write of a batch's
records to its sinks between running the operators and the commit.

A :class:`~redis_streaming.sink.RedisSink` takes part in the commit: its node turns records
into Redis commands (``run.writes``) that ``commit.lua`` applies with the batch (or, on a
cluster, that go through the outbox). Any other sink gets the batch's records for it in one
``write`` call before the commit; the task reads its next batch only after that (and the
commit) returned, so a slow sink holds the stage back instead of records piling up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis_streaming._redis.backoff import Backoff
from redis_streaming.errors import InvalidName
from redis_streaming.ratelimit import RateLimiter, limiter
from redis_streaming.ratelimit.keys import validate_limiter_name
from redis_streaming.runtime.keys import hash_tag
from redis_streaming.runtime.operators import Node
from redis_streaming.runtime.records import Record
from redis_streaming.sink import RedisSink, SinkBatch, SinkRecord

if TYPE_CHECKING:
    from redis_streaming.runtime.context import BatchRun
    from redis_streaming.runtime.shared import StageShared

__all__ = ["RedisSinkNode", "SinkNode", "SinkStopped", "SinkWriter"]

log = logging.getLogger(__name__)


def _valid(name: str) -> bool:
    try:
        validate_limiter_name(name)
    except InvalidName:
        return False
    return True


def sink_record(run: BatchRun, rec: Record) -> SinkRecord:
    """``rec`` as a sink sees it, with the id of the input entry it came from."""
    entry_id = run.entry_id
    return SinkRecord(rec.key, rec.value, rec.ts, None if entry_id is None else entry_id.decode())


class SinkNode(Node):
    """Hands each record to ``sink`` (collected per batch, written before the commit)."""

    __slots__ = ("sink",)

    def __init__(self, sink: Any) -> None:
        super().__init__()
        self.sink = sink

    async def push(self, run: BatchRun, rec: Record) -> None:
        run.sinked.append((self.sink, sink_record(run, rec)))


class RedisSinkNode(Node):
    """Turns each record into the Redis writes of ``sink``, applied in the batch's commit. A
    key that no other key can share a cluster slot with by name (a ``}`` and no hash tag)
    fails the record on every deployment, so a job behaves the same on a cluster."""

    __slots__ = ("sink",)

    def __init__(self, sink: RedisSink) -> None:
        super().__init__()
        self.sink = sink

    async def push(self, run: BatchRun, rec: Record) -> None:
        record = sink_record(run, rec)
        ops = self.sink.ops(record)
        for _, key, _ in ops:
            hash_tag(key)
        run.writes += ops
        if self.sink.rate_limit is not None:  # counted by the SinkWriter, not written by it
            run.sinked.append((self.sink, record))


class SinkStopped(Exception):
    """The task stopped while a sink waited for its rate limit: the batch stays uncommitted."""


class SinkWriter:
    """Writes a batch's records to the stage's sinks (not Redis sinks: those commit) for the
    task on ``partition``. A sink that raises is called again with the same batch, with
    capped exponential backoff, as long as ``running()``; sinks that succeeded are not called
    again. When the task stops meanwhile the error is raised and the batch stays uncommitted
    (pending) for the next owner of the partition.

    A sink with a ``rate_limit`` (Redis sinks too, before their commit) first takes one permit
    per record of the batch from its limiter (:func:`~redis_streaming.sink.base.sink_rate_limit`)
    and waits for them; a stop ends the wait with :class:`SinkStopped` (batch uncommitted)."""

    __slots__ = ("limiters", "partition", "running", "shared", "stopping")

    def __init__(
        self,
        shared: StageShared,
        partition: int,
        running: Callable[[], bool],
        stopping: asyncio.Event,
    ) -> None:
        self.shared = shared
        self.partition = partition
        self.running = running
        self.stopping = stopping
        stage = shared.stage
        self.limiters: dict[int, RateLimiter] = {}
        for index, sink in enumerate(stage.sinks):
            limit = getattr(sink, "rate_limit", None)
            if limit is not None:
                name = getattr(sink, "rate_limit_name", None)
                if name is None:
                    own = getattr(sink, "name", None)
                    own = own if isinstance(own, str) and _valid(own) else f"{stage.id}.{index}"
                    name = f"sink:{stage.job}:{own}"
                self.limiters[id(sink)] = limiter(
                    shared.redis, name, limit, namespace=shared.options.namespace
                )

    async def write(self, run: BatchRun, last_id: bytes | None) -> None:
        """Write the records ``run`` has for each sink, sink by sink in the order the job
        declared them; returns once every sink has taken them."""
        if not run.sinked:
            return
        stage = self.shared.stage
        last = None if last_id is None else last_id.decode()
        for sink in stage.sinks:
            records = [rec for s, rec in run.sinked if s is sink]
            if not records:
                continue
            gate = self.limiters.get(id(sink))
            if gate is not None:
                await self._throttle(gate, len(records))
            if not isinstance(sink, RedisSink):  # a Redis sink writes in the commit
                batch = SinkBatch(stage.job, stage.id, stage.topic, self.partition, records, last)
                await self._write(sink, batch)

    async def _throttle(self, gate: RateLimiter, count: int) -> None:
        """Take ``count`` permits (in turn, in steps of at most the limit's burst), then wait
        until the last one is due, or raise :class:`SinkStopped` when the task stops first."""
        step = gate.limit.max_at_once
        wait_s = 0.0
        for start in range(0, count, step):
            wait_s = max(wait_s, await gate.reserve(min(step, count - start)))
        if wait_s <= 0:
            return
        try:
            async with asyncio.timeout(wait_s):
                await self.stopping.wait()
        except TimeoutError:
            return
        raise SinkStopped(f"stopped while waiting for rate limiter {gate.name!r}")

    async def _write(self, sink: Any, batch: SinkBatch) -> None:
        backoff = Backoff(self.shared.runtime.retry_backoff_ms / 1000)
        while True:
            try:
                await sink.write(batch)
                return
            except Exception as exc:
                self.shared.record_error(exc)
                if not self.running():
                    raise
                delay = backoff.next_delay()
                log.warning(
                    "job %s partition %d: sink %r failed (%s: %s); writing the batch again in "
                    "%.2fs (failure %d)", self.shared.stage.group, self.partition, sink,
                    type(exc).__name__, exc, delay, backoff.failures,
                )  # fmt: skip
            try:
                async with asyncio.timeout(delay):
                    await self.stopping.wait()
            except TimeoutError:
                pass
