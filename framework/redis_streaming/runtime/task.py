"""A stage's task on one owned partition: read a batch, load its state, run the operators,
commit; on start (and after any error) first the entries left pending.

Every effect of a batch is in its commit (``commit.lua``), which also acknowledges the batch:
the group's pending entries on the partition are exactly the uncommitted work. So a task that
starts, or recovers from an error whose outcome it cannot know, claims every pending entry
(``XAUTOCLAIM``, min idle 0: the lease says the previous owner is gone) and processes those
first, in id order. A batch whose commit already went through is not pending any more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from redis_streaming._redis.background import BackgroundLoop, Prefixed, log_retry
from redis_streaming._redis.backoff import Backoff
from redis_streaming._redis.errors import is_busygroup, is_noscript
from redis_streaming.errors import DecodeError
from redis_streaming.metrics.batching import TaskCounts
from redis_streaming.mq.consume.leases import Leases
from redis_streaming.mq.durability import Durability
from redis_streaming.runtime.commit import COMMIT, Committer
from redis_streaming.runtime.context import BatchRun
from redis_streaming.runtime.loader import StateLoader
from redis_streaming.runtime.lookups import TableLookups
from redis_streaming.runtime.operators import Node, Pass
from redis_streaming.runtime.reading import Entry, PartitionReader, entries, id_order
from redis_streaming.runtime.records import Record, decode_record
from redis_streaming.runtime.shared import StageShared
from redis_streaming.runtime.sinking import SinkWriter
from redis_streaming.runtime.timekeeping import TaskTime
from redis_streaming.state.batch import BatchState
from redis_streaming.state.cache import StateCache
from redis_streaming.window.clock import BatchClock
from redis_streaming.window.timers import BatchTimers

__all__ = ["StageTask"]

log = logging.getLogger(__name__)


class Fenced(Exception):
    """The partition's lease or epoch is no longer this task's: stop, write nothing."""


class StageTask(BackgroundLoop):
    """Processes one input partition of one stage while this consumer holds its lease."""

    def __init__(self, shared: StageShared, partition: int, leases: Leases) -> None:
        super().__init__()
        self.shared = shared
        self.stage = shared.stage
        self.partition = partition
        self.leases = leases
        self.redis = shared.redis
        self.log = Prefixed(log, f"job {self.stage.group} partition {partition}")
        self.stream = shared.keys.mq.stream(self.stage.topic, partition)
        self.committer = Committer(
            shared.keys, self.stage, partition, shared.consumer_id, shared.targets,
            outbox=shared.cluster, clock=shared.clock,
            durability=Durability.of(shared.options),
        )  # fmt: skip
        self.cache = StateCache(shared.runtime.cache_max_keys)
        self.loader = StateLoader(self.redis, self.committer, self.cache, shared.clock)
        self.labels = shared.metrics.runtime_labels(
            self.stage.job, self.stage.id, self.stage.topic, partition
        )
        self.counts = TaskCounts(shared.metrics, self.labels)
        self.epoch = 0
        self.steps = 0  # turns of the loop begun (JobTest waits for one to end)
        self.backlog: list[Entry] = []
        self._ahead: list[Entry] = []  # read in the same round trip as the last commit
        self._ready = False
        self._next_check = 0.0
        self.forwarder = shared.forwarder_for(partition)
        self.lookups = (
            TableLookups(self.redis, shared.keys, self.stage.lookups, shared.table_partitions)
            if self.stage.lookups
            else None
        )
        self.reader = PartitionReader(
            self.redis, self.stream, self.stage.group, shared.consumer_id,
            shared.runtime.batch_size,
        )  # fmt: skip
        self.time = TaskTime(shared, self.committer, self.loader, self.lookups, self.log)
        self.sinks = (
            SinkWriter(shared, partition, self._taking, self._stopping)
            if self.stage.sinks
            else None
        )

    # -- lifecycle (the coordinator's PartitionRunner) ----------------------------------------

    def start(self) -> None:
        """Start processing in a background task."""
        self._launch(f"rs-task-{self.stage.group}-{self.partition}")
        if self.forwarder is not None:
            self.forwarder.start()

    def request_stop(self) -> None:
        """Stop after the batch in progress (it commits, or stays pending)."""
        self._stopping.set()

    @property
    def done(self) -> bool:
        """True once the task has ended."""
        return not self.running

    async def stop(self, timeout_s: float | None = 0.0) -> None:
        """Let the batch in progress commit within ``timeout_s``, then cancel (its entries stay
        pending for the next owner: nothing is half-applied)."""

        def overrun() -> None:
            self.log.warning("batch still running after %.1fs; cancelling it", timeout_s or 0)

        await self._end(timeout_s, overrun)
        if self.forwarder is not None:
            await self.forwarder.stop()

    # -- the loop ----------------------------------------------------------------------------

    def _lease_left_s(self) -> float:
        return self.leases.valid_until(self.partition) - time.monotonic()

    def _taking(self) -> bool:
        return not self._stopping.is_set() and self._lease_left_s() > 0.05

    async def _run(self) -> None:
        try:
            await self._supervise(self._step, Backoff(), self._after_error, running=self._taking)
        except Fenced:
            self.log.warning("fenced: another consumer owns the partition now; stopping")
        finally:
            self.counts.flush()
            self.cache.clear()
            self.shared.tasks.pop(self.partition, None)
            if self.forwarder is not None and not self._stopping.is_set():
                # Ended by itself (lease lost, fenced): the coordinator drops it without
                # stop(), so its outbox forwarder ends here (shielded: we may be cancelled).
                await asyncio.shield(self.forwarder.stop())

    async def _after_error(self, exc: Exception, backoff: Backoff) -> float:
        if isinstance(exc, Fenced):
            raise exc
        # The outcome of the failed call is unknown (a commit may have gone through): forget
        # the cache and what was read, and claim what is still pending.
        self._ready = False
        self.cache.clear()
        self.backlog.clear()
        self._ahead = []
        self.shared.record_error(exc)
        delay = backoff.next_delay()
        if is_noscript(exc):  # the server restarted (or flushed its scripts): loaded again next
            self.log.warning(
                "Redis has lost the commit script (restarted?); retrying in %.2fs", delay
            )
        else:
            log_retry(self.log, exc, delay)
        return delay

    async def _step(self) -> float | None:
        self.steps += 1
        self.counts.flush_if_due()
        if not self._ready:
            await self._recover()
            self._ready = True
        sub = self.shared.sub
        if sub.paused:
            await sub.wait_resumed(min(self.shared.options.block_ms / 1000, 1.0))
            return None
        if not self.backlog and not self._ahead and time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self.shared.options.rebalance_interval_s
            await self._claim(min_idle_ms=int(self.shared.options.lease_ttl_s * 1000))
        if self.backlog:
            size = self.shared.runtime.batch_size
            batch, self.backlog = self.backlog[:size], self.backlog[size:]
        elif self._ahead:
            batch, self._ahead = self._ahead, []
        else:
            batch = await self._read()
        if batch and sub.paused:  # paused while the read waited: held, in order, until resumed
            self.backlog = batch + self.backlog
            return None
        if batch and self._taking():
            await self._process(batch)
        elif not batch and self.stage.timer_ops and self._taking():
            await self._tick()
        return 0.0

    async def _recover(self) -> None:
        start_id = "0" if self.shared.runtime.start == "earliest" else "$"
        try:
            await self.redis.xgroup_create(
                self.stream, self.stage.group, id=start_id, mkstream=True
            )
        except Exception as exc:
            if not is_busygroup(exc):
                raise
        # Queued in pipelines: a reply NOSCRIPT fails the step. Loaded on this partition's node.
        await COMMIT.load(self.redis, self.stream)
        self.epoch = await self.committer.claim(self.redis)
        if not self.epoch:
            raise Fenced()
        self.backlog = []
        self._ahead = []
        if self.stage.timer_ops:
            await self.time.load()
        await self._claim(min_idle_ms=0)

    async def _claim(self, *, min_idle_ms: int) -> None:
        """Add pending entries of the group to the backlog (all of them on start; on later
        checks those idle for a lease TTL: a former owner's read that landed after it lost
        the lease)."""
        claimed = await self.reader.claim(min_idle_ms)
        if claimed:
            known = {eid for eid, _ in self.backlog}
            self.backlog += [e for e in claimed if e[0] not in known]
            self.backlog.sort(key=id_order)

    async def _read(self) -> list[Entry]:
        block_ms = min(self.shared.options.block_ms, int((self._lease_left_s() - 0.1) * 1000))
        if block_ms <= 0:
            return []
        return await self.reader.read(block_ms)

    # -- one batch ---------------------------------------------------------------------------

    async def _process(self, batch: list[Entry]) -> None:
        shared = self.shared
        records: list[tuple[Entry, Record]] = []
        for entry in batch:
            try:
                records.append(
                    (entry, decode_record(entry[1], shared.decoder, self.stage.timestamp))
                )
            except DecodeError as exc:
                await shared.dead_letter(self.partition, entry, "undecodable", 1, exc)
        found: dict[Any, Any] = {}
        if records:
            keys = {rec.key for _, rec in records}
            await self.loader.load(self.stage.stores, keys)
            if self.lookups is not None:
                found = await self.lookups.load(keys)
        run = await self._run_operators(records, lookups=found)
        if self.sinks is not None:  # before the commit: a slow sink holds the next read back
            await self.sinks.write(run, batch[-1][0])
        await self._commit(run, [e[0] for e in batch])

    async def _tick(self) -> None:
        """No entries came: fire the timers the clock alone has made due (the watermark an
        idle partition has reached), in a commit of no entries."""
        target = self.time.tick_watermark()
        if target is None:
            return
        run = await self._run_operators([], advance_to=target)
        if self.sinks is not None:
            await self.sinks.write(run, None)
        await self._commit(run, [])

    async def _commit(self, run: BatchRun, ids: list[bytes]) -> None:
        shared = self.shared
        started = time.perf_counter()
        pipe = self.redis.pipeline(transaction=False)
        written = self.committer.queue(pipe, self.redis, self.epoch, ids, run)
        # The next batch is read in the same round trip (no BLOCK: when it comes back empty,
        # the next step blocks on its own). Not while the backlog of claimed entries lasts.
        read_ahead = bool(ids) and not self.backlog and self._taking() and not shared.sub.paused
        if read_ahead:
            self.reader.queue_read(pipe)
        replies = await pipe.execute()
        result = self.committer.result(replies, written)  # DurabilityError: see commit.py
        if result.status == "FENCED":
            raise Fenced()
        if read_ahead:
            self._ahead = entries(replies[self.committer.replies])
        if not ids:
            if result.status == "ALREADY":
                # A tick sent again whose first send had committed (or a stale count): read
                # back what Redis holds rather than guess.
                self.cache.clear()
                self._ready = False
                return
            self.committer.ticks += 1
        run.state.committed()
        run.timers.committed()
        run.wall_timers.committed()
        run.clock.committed(run.now_ms, had_records=bool(ids))
        shared.committed(self, run, result, len(ids), time.perf_counter() - started)
        if self.forwarder is not None and run.outputs:
            self.forwarder.wake()

    async def _run_operators(
        self,
        records: list[tuple[Entry, Record]],
        advance_to: int | None = None,
        lookups: dict[Any, Any] | None = None,
    ) -> BatchRun:
        """Run the batch through the stage; a record whose function raises makes the batch
        run again (state untouched: it is only in the overlay) up to ``max_attempts``, then
        only that record is undone and dead-lettered."""
        runtime = self.shared.runtime
        push = _entry(self.stage.root).push
        for attempt in range(1, runtime.max_attempts + 1):
            now = self.cache.now_ms = self.shared.clock.now_ms()  # the batch's wall time
            run = BatchRun(
                BatchState(self.cache),
                self.shared.options.max_payload_bytes,
                BatchClock(self.time.clock),
                BatchTimers(self.time.timer_index),
                BatchTimers(self.time.wall_index),
                now,
            )
            if advance_to is not None:
                run.clock.advance_to(advance_to)
            if lookups:
                run.lookups = lookups
            clock = run.clock
            last = attempt == runtime.max_attempts
            failed: list[tuple[Entry, Exception]] = []
            for entry, rec in records:
                # Only the last attempt undoes a failing record; an earlier one runs the
                # whole batch again in a new BatchRun, so it needs no savepoints.
                mark = run.savepoint() if last else ()
                run.entry_id = entry[0]
                try:
                    await push(run, rec)
                    clock.observe(rec.ts)
                except Exception as exc:
                    if not last:
                        self.shared.record_error(exc)
                        break
                    run.rollback(mark)
                    failed.append((entry, exc))
            else:
                run.entry_id = records[-1][0][0] if records else None  # timers: the batch's end
                try:
                    await self.time.fire(run, last)
                except Exception as exc:
                    if last:
                        raise  # the task's error handling: back off, then start over
                    self.shared.record_error(exc)
                else:
                    for bad, error in failed:
                        await self.shared.dead_letter(
                            self.partition, bad, "max_attempts", attempt, error
                        )
                    return run
            delay = runtime.retry_backoff_ms * 2 ** (attempt - 1) / 1000
            self.log.warning(
                "a function raised (%s); running the batch again in %.2fs (attempt %d of %d)",
                self.shared.last_error, delay, attempt + 1, runtime.max_attempts,
            )  # fmt: skip
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _entry(node: Node) -> Node:
    """The node a stage's records go to first: past a ``Pass`` with one successor (the
    stage's root before a single operator), which would only hand each record on."""
    while type(node) is Pass and len(node.next) == 1:
        node = node.next[0]
    return node
