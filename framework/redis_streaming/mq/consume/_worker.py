"""One partition of one subscription: claim what the previous owner left, then read, in order."""

from __future__ import annotations

import logging
import time
from typing import Any

from redis_streaming._redis.background import BackgroundLoop, Prefixed, log_retry
from redis_streaming._redis.backoff import Backoff
from redis_streaming._redis.errors import is_busygroup, is_nogroup, is_unblocked
from redis_streaming._redis.replies import as_text
from redis_streaming.cluster import route
from redis_streaming.metrics import Metrics
from redis_streaming.mq.consume._batch import BatchDelivery
from redis_streaming.mq.consume._consumer_names import delete_consumer_names
from redis_streaming.mq.consume._delivery import Delivery, Entry
from redis_streaming.mq.consume._throttle import Throttle
from redis_streaming.mq.consume.leases import Leases
from redis_streaming.mq.consume.subscription import Subscription
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.retry.mover import RetryMover

__all__ = ["PartitionWorker"]

log = logging.getLogger(__name__)
_CLAIM_COUNT = 100


class PartitionWorker(BackgroundLoop):
    """Serial, ordered processing of one partition for one subscription.

    Runs while the consumer holds the partition's lease. On start it creates the group on the
    partition stream and on the group's redelivery stream, then claims every pending entry of the
    group there (``XAUTOCLAIM`` with min idle 0: the lease, not an idle timer, says the previous
    owner is gone) and processes those first, in id order. Then it reads both streams with one
    ``XREADGROUP``. It stops taking entries as soon as a stop is requested or its lease deadline
    passes; entries already read but not started stay pending for the next owner. While the
    subscription is paused it reads nothing and holds the entries it has, in order.
    """

    def __init__(
        self,
        redis: Any,
        options: MQOptions,
        sub: Subscription,
        partition: int,
        consumer_id: str,
        leases: Leases,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__()
        self.redis = redis
        self.options = options
        self.sub = sub
        self.partition = partition
        self.consumer_id = consumer_id
        self.leases = leases
        self.log = Prefixed(log, f"{sub.topic} partition {partition}")
        keys = Keys(options.namespace)
        self.stream = keys.stream(sub.topic, partition)
        self.redeliver = keys.redeliver(sub.topic, partition, sub.group)
        self.mover = RetryMover(redis, options, keys, sub.topic, partition, sub.group)
        self.delivery = (BatchDelivery if sub.batch else Delivery)(
            redis,
            options,
            sub,
            partition,
            consumer_id,
            self.mover.wake,
            self._stopping,
            self._taking,
            metrics=metrics,
        )
        self.metrics = self.delivery.metrics
        self.throttle = (
            None
            if sub.rate_limit is None
            else Throttle(
                redis,
                options.namespace,
                sub.topic,
                sub.group,
                sub.rate_limit,
                self._taking,
                self._stopping,
                slice_s=options.block_ms / 1000,
            )
        )
        self._recovered = False  # groups created and pending entries claimed since (re)start
        self._next_check = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker task and its retry mover."""
        self._launch(f"rs-worker-{self.sub.topic}-{self.partition}-{self.sub.group}")
        self.mover.start()

    def request_stop(self) -> None:
        """Stop taking entries; the handler in progress (if any) finishes."""
        self._stopping.set()

    @property
    def done(self) -> bool:
        """True once the worker task has ended."""
        return not self.running

    async def stop(self, timeout_s: float | None = 0.0) -> None:
        """Request a stop, wait up to ``timeout_s`` (None: no limit) for the handler in
        progress, then cancel; then wait for the acknowledgements, retries and dead letters
        still being written (see :class:`~redis_streaming._redis.background.FinalWrites`).

        A cancelled handler's entry is not acknowledged: the next owner processes it again.
        """

        def overrun() -> None:
            self.log.warning(
                "handler still running after %.1fs; cancelling it, the message will be redelivered",
                timeout_s or 0,
            )

        await self._end(timeout_s, overrun)
        await self.delivery.final_writes.wait()
        await self.mover.stop()

    # -- the loop ----------------------------------------------------------------------------

    def _lease_left_s(self) -> float:
        return self.leases.valid_until(self.partition) - time.monotonic()

    def _taking(self) -> bool:
        return not self._stopping.is_set() and self._lease_left_s() > 0.05

    async def _run(self) -> None:
        try:
            await self._supervise(self._step, Backoff(), self._after_error, running=self._taking)
        finally:
            await self.delivery.final_writes.shield(self.delivery.flush_quietly())
            # A worker whose lease ran out (its node unreachable for longer than lease_ttl_s,
            # e.g. a primary failing over) or was lost ends here and is dropped without
            # stop(): its retry mover ends with it (shielded, as stop() may be cancelling us).
            await self.delivery.final_writes.shield(self.mover.stop())

    async def _step(self) -> float | None:
        self.delivery.counts.flush_if_due()
        if not self._recovered:
            await self._recover()
            self._recovered = True
            self._next_check = time.monotonic() + self.options.rebalance_interval_s
        if self.sub.paused:
            await self.delivery.flush()
            await self.sub.wait_resumed(self.options.block_ms / 1000)
            return None  # only waited: the backoff stays as it is
        if time.monotonic() >= self._next_check:
            await self._claim(takeover=False)
            self._next_check = time.monotonic() + self.options.rebalance_interval_s
        await self._read_once()
        return 0.0

    async def _after_error(self, exc: Exception, backoff: Backoff) -> float:
        """Seconds to wait after ``exc`` before the next step (0: recreate the groups now)."""
        if is_nogroup(exc) or is_unblocked(exc):
            log.warning(
                "%s partition %d group %s: %s (stream or group gone, e.g. Redis "
                "restarted without persistence); recreating the group",
                self.sub.topic,
                self.partition,
                self.sub.group,
                exc,
            )
            self._recovered = False
            return 0.0
        # The failed call may have run on the server (a read that delivered entries whose
        # reply was lost): claim our own pending entries again.
        self._recovered = False
        self.sub.record_error(exc)
        delay = backoff.next_delay()
        log_retry(self.log, exc, delay)
        return delay

    async def _recover(self) -> None:
        """(Re)start: create the groups, send queued outcomes, claim everything pending."""
        await self._ensure_groups()
        await self.delivery.load_scripts()
        await self.delivery.flush()
        await self._claim(takeover=True)

    async def _ensure_groups(self) -> None:
        start_id = "0" if self.sub.start == "earliest" else "$"
        for key, sid in ((self.stream, start_id), (self.redeliver, "0")):
            try:
                await self.redis.xgroup_create(key, self.sub.group, id=sid, mkstream=True)
            except Exception as exc:
                if not is_busygroup(exc):
                    raise

    async def _read_once(self) -> None:
        block_ms = min(self.options.block_ms, int((self._lease_left_s() - 0.1) * 1000))
        if block_ms <= 0:
            return
        # The previous batch's XACKs and retry schedules travel in the same round trip as the
        # next read.
        pipe = self.redis.pipeline(transaction=False)
        queued = self.delivery.queue_outcomes(pipe)
        count = self.sub.batch_size
        if self.throttle is not None:  # a slow limit reads a little at a time
            count = self.throttle.read_count(count)
        pipe.execute_command(
            "XREADGROUP", "GROUP", self.sub.group, self.consumer_id,
            "COUNT", count, "BLOCK", block_ms,
            "STREAMS", self.redeliver, self.stream, ">", ">",
            **route(self.redis, self.stream),  # cluster: the partition's node, found locally
        )  # fmt: skip
        replies = await pipe.execute()
        self.delivery.mark_sent(queued)
        for key, entries in replies[-1] or ():
            source = as_text(key)
            await self._process([Entry(source, eid, fields, 1) for eid, fields in entries])

    async def _process(self, batch: list[Entry]) -> None:
        if isinstance(self.delivery, BatchDelivery):
            await self._process_batches(self.delivery, batch)
            return
        taken = 0
        if self.throttle is not None:
            self.throttle.new_batch()
        try:
            for i, entry in enumerate(batch):
                if self.sub.paused:  # checked before every entry: a pause takes effect at once
                    await self._hold_while_paused()
                if self.throttle and not await self._wait_turn(self.throttle, len(batch) - i):
                    return
                if not self._taking():
                    return  # left pending: the next owner (or this one, later) claims it
                taken += 1
                await self.delivery.handle(entry)
        finally:
            if taken:  # counted once per batch (and added to the counter twice a second)
                self.delivery.counts.consumed(taken)

    async def _process_batches(self, delivery: BatchDelivery, entries: list[Entry]) -> None:
        """Hand ``entries`` to a batch handler, ``batch_size`` at a time, in order. Pause, stop,
        lease loss and the rate limit (a turn per entry) act between batches: a batch not
        started stays pending, whole."""
        size = self.sub.batch_size
        taken = 0
        if self.throttle is not None:
            self.throttle.new_batch()
        try:
            for start in range(0, len(entries), size):
                chunk = entries[start : start + size]
                if self.sub.paused:
                    await self._hold_while_paused()
                if self.throttle is not None:
                    for i in range(len(chunk)):
                        if not await self._wait_turn(self.throttle, len(entries) - start - i):
                            return
                if not self._taking():
                    return  # left pending: the next owner (or this one, later) claims it
                taken += len(chunk)
                await delivery.handle_batch(chunk)
        finally:
            if taken:
                self.delivery.counts.consumed(taken)

    async def _wait_turn(self, throttle: Throttle, left: int) -> bool:
        """Wait for the entry's turn under the subscription's rate limit (reading waits with
        it; the coordinator goes on renewing the lease). A pause that came meanwhile holds the
        entry, its turn kept. False when a stop or a lost lease ended the wait."""
        if not await throttle.take(left, self.delivery.flush):
            return False
        if self.sub.paused:
            await self._hold_while_paused()
        return True

    async def _hold_while_paused(self) -> None:
        """Keep the rest of a batch (read before the pause, or claimed) until resumed.

        What was handled is acknowledged first. The coordinator goes on renewing the lease; if
        it is lost (or a stop is requested) meanwhile, this returns and the held entries stay
        pending for the next owner, who claims them in order.
        """
        await self.delivery.flush()
        while self.sub.paused and self._taking():
            wait_s = min(self.options.block_ms / 1000, self._lease_left_s())
            await self.sub.wait_resumed(max(wait_s, 0.01))

    # -- claiming ----------------------------------------------------------------------------

    async def _claim(self, *, takeover: bool) -> None:
        """Claim and process pending entries of the group on this partition.

        ``takeover``: every pending entry, whoever holds it (min idle 0). Otherwise only entries
        idle for a lease TTL: stragglers of a previous owner that read after losing its lease,
        and this consumer's own entries whose read reply was lost (redis-py resends a read
        after a dropped connection, and the entries the first one delivered stay pending).
        Outcomes are flushed first and no handler of this partition runs meanwhile, so an
        entry of its own still pending then was never handled. Other consumers' names that hold
        nothing and have been idle for a lease TTL plus ``block_ms`` are deleted, so dead names
        do not pile up in the group (see :mod:`redis_streaming.mq.consume._consumer_names`).
        """
        if not takeover:
            await self.delivery.flush()
        for key in (self.redeliver, self.stream):
            if takeover:
                entries = await self._autoclaim(key)
            else:
                entries = await self._claim_stragglers(key)
            if entries:
                await self._with_deliveries(key, entries)
                await self._process(entries)
                await self.delivery.flush()

    async def _autoclaim(self, key: str) -> list[Entry]:
        entries: list[Entry] = []
        cursor: Any = "0-0"
        while True:
            reply = await self.redis.xautoclaim(
                key, self.sub.group, self.consumer_id, 0, start_id=cursor, count=_CLAIM_COUNT
            )
            cursor, claimed = reply[0], reply[1]
            for eid, fields in claimed:
                if fields is None:  # trimmed while pending (Redis 6.2): nothing to process
                    await self.redis.xack(key, self.sub.group, eid)
                    continue
                entries.append(Entry(key, eid, fields, 1))
            if cursor in (b"0-0", "0-0"):
                return entries

    async def _claim_stragglers(self, key: str) -> list[Entry]:
        consumers = await self.redis.xinfo_consumers(key, self.sub.group)
        min_idle = int(self.options.lease_ttl_s * 1000)
        # Names idle this long are past any read they had blocked. The delete rechecks that a
        # name still holds nothing in the same atomic step: an entry its read received since
        # this snapshot stays pending under it (a separate DELCONSUMER would drop it).
        forget_ms = min_idle + self.options.block_ms
        entries: list[Entry] = []
        gone: list[str] = []
        for info in consumers:
            name = as_text(info["name"])
            if int(info["pending"]) == 0:
                if name != self.consumer_id and int(info["idle"]) >= forget_ms:
                    gone.append(name)
                continue
            pending = await self.redis.xpending_range(
                key, self.sub.group, min="-", max="+", count=1000, consumername=name, idle=min_idle
            )
            ids = [p["message_id"] for p in pending]
            if ids:
                claimed = await self.redis.xclaim(
                    key, self.sub.group, self.consumer_id, min_idle, ids
                )
                entries += [Entry(key, eid, f, 1) for eid, f in claimed if f is not None]
        await delete_consumer_names(self.redis, key, self.sub.group, gone, min_idle_ms=forget_ms)
        entries.sort(key=lambda e: _id_tuple(e.id))
        return entries

    async def _with_deliveries(self, key: str, entries: list[Entry]) -> None:
        """Fill in each claimed entry's delivery count (for poison detection)."""
        counts: dict[bytes, int] = {}
        for start in range(0, len(entries), 1000):
            chunk = entries[start : start + 1000]
            pending = await self.redis.xpending_range(
                key,
                self.sub.group,
                min=chunk[0].id,
                max=chunk[-1].id,
                count=len(chunk),
                consumername=self.consumer_id,
            )
            for p in pending:
                mid = p["message_id"]
                counts[mid if isinstance(mid, bytes) else mid.encode()] = int(p["times_delivered"])
        for e in entries:
            e.deliveries = counts.get(e.id, 1)


def _id_tuple(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)
