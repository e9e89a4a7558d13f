"""Per-subscription coordination: membership, fair assignment, leases and partition workers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from redis_streaming._redis.background import BackgroundLoop, Prefixed, log_retry
from redis_streaming._redis.backoff import Backoff
from redis_streaming.errors import TopicNotFound
from redis_streaming.metrics import Metrics, default_metrics
from redis_streaming.mq.consume._consumer_names import delete_consumer_names
from redis_streaming.mq.consume._membership import Membership, assign
from redis_streaming.mq.consume._worker import PartitionWorker
from redis_streaming.mq.consume.leases import Leases
from redis_streaming.mq.consume.subscription import Subscription
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.topics import TopicStore

__all__ = ["GroupCoordinator", "PartitionRunner", "RunnerFactory"]

log = logging.getLogger(__name__)


class PartitionRunner(Protocol):
    """What works on one owned partition: the consumer's :class:`PartitionWorker`, or a
    stream-processing task of the runtime. It runs while its lease is held (``leases``
    says until when) and stops in the three steps of :meth:`stop`."""

    def start(self) -> None:
        """Start working in a background task."""

    def request_stop(self) -> None:
        """Stop taking entries; the work in progress finishes."""

    @property
    def done(self) -> bool:
        """True once the runner has ended (by itself or stopped)."""

    async def stop(self, timeout_s: float | None = 0.0) -> None:
        """Request a stop, wait up to ``timeout_s`` for the work in progress, then cancel."""


RunnerFactory = Callable[[int, Leases], PartitionRunner]
"""Builds the runner of one partition, given the partition and the coordinator's leases."""


class GroupCoordinator(BackgroundLoop):
    """Keeps one subscription's share of partitions owned and worked on.

    Every ``rebalance_interval_s`` it renews its leases (a worker whose renewal fails stops
    taking entries at once), heartbeats the membership, computes the fair assignment from the
    live members, drains and releases partitions it should no longer own, acquires the ones it
    should, and picks up any partition whose lease has stayed free for 1.5 intervals.
    A partition is never worked on by two workers of this consumer at once: a new worker starts
    only after the previous one for that partition has ended.
    """

    def __init__(
        self,
        redis: Any,
        options: MQOptions,
        sub: Subscription,
        consumer_id: str,
        *,
        metrics: Metrics | None = None,
        runner_factory: RunnerFactory | None = None,
    ):
        super().__init__()
        self.redis = redis
        self.metrics = metrics or default_metrics()
        self.options = options
        self.sub = sub
        self.consumer_id = consumer_id
        self.log = Prefixed(log, f"{sub.topic} group {sub.group}")
        self.keys = Keys(options.namespace)
        self.store = TopicStore(redis, options)
        ttl = options.lease_ttl_s
        self.membership = Membership(redis, self.keys, sub.topic, sub.group, consumer_id, ttl)
        self.leases = Leases(redis, self.keys, sub.topic, sub.group, consumer_id, ttl)
        self.partitions = 0
        self.retention_max_len = 0
        self.members: list[str] = []
        self.runner_factory = runner_factory or self._new_worker
        self.workers: dict[int, PartitionRunner] = {}
        self._releasing: dict[int, asyncio.Task[None]] = {}
        self._retiring: dict[int, PartitionRunner] = {}
        self._touched: set[int] = set()
        self._free_since: dict[int, float] = {}
        self._hold_until: dict[int, float] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start coordinating in a background task."""
        self._launch(f"rs-coordinator-{self.sub.topic}-{self.sub.group}")

    @property
    def last_tick_ok(self) -> bool:
        """False while rounds fail (from a failed round to the next that succeeds)."""
        return self.last_error is None

    async def _run(self) -> None:
        await self._supervise(self._round, Backoff(), self._after_error)

    async def _round(self) -> float:
        await self.tick()
        return self.options.rebalance_interval_s

    async def _after_error(self, exc: Exception, backoff: Backoff) -> float:
        self.sub.record_error(exc)
        wait = min(backoff.next_delay(), self.options.rebalance_interval_s)
        log_retry(self.log, exc, wait)
        return wait

    # -- one round ---------------------------------------------------------------------------

    async def _refresh_topic(self) -> None:
        meta = await self.store.get(self.sub.topic)
        if meta is None:
            if not self.options.auto_create_topics and not self.partitions:
                raise TopicNotFound(self.sub.topic)
            if self.options.auto_create_topics:
                # recreate with the count we knew (e.g. after a restart without persistence)
                count = self.partitions or self.options.default_partitions
                _, meta = await self.store.create(
                    self.sub.topic,
                    count,
                    retention_max_len=self.retention_max_len
                    or self.options.default_retention_max_len,
                )
        if meta is not None:
            self.partitions = meta.partitions
            self.retention_max_len = meta.retention_max_len

    async def tick(self) -> None:
        """One round of renewal, heartbeat, release, acquisition and pick-up."""
        self._reap()
        await self._refresh_topic()
        held = set(self.workers) | set(self._releasing)
        for p in await self.leases.renew(held):
            self._on_lease_lost(p)
        # The heartbeat comes after the renewals (and again after new acquisitions, below):
        # a member's expiry is never earlier than its leases', so the other members, once they
        # see it gone, find its partitions free at that same round (takeover within the lease
        # TTL plus one interval, not two).
        self.members = await self.membership.heartbeat()
        desired = assign(self.members, self.partitions, self.consumer_id)
        now = time.monotonic()
        for p in sorted(set(self.workers) - desired):
            if self._hold_until.get(p, 0) <= now:
                self._release(p)
        busy = set(self.workers) | set(self._releasing) | set(self._retiring)
        taken = await self.leases.acquire(desired - busy)
        for p in taken:
            self._start_worker(p)
        taken |= await self._pick_up_orphans(desired, now)
        if taken:
            await self.membership.heartbeat()
        self.sub.owned = set(self.workers)

    async def _pick_up_orphans(self, desired: set[int], now: float) -> set[int]:
        """Take partitions nobody has held for 1.5 intervals; returns those taken."""
        others = set(range(self.partitions)) - desired - set(self.workers)
        others -= set(self._releasing) | set(self._retiring)
        if not others:
            self._free_since.clear()
            return set()
        holders = await self.leases.holders(others)
        grab = set()
        for p, holder in holders.items():
            if holder is not None:
                self._free_since.pop(p, None)
                continue
            since = self._free_since.setdefault(p, now)
            if now - since > 1.5 * self.options.rebalance_interval_s:
                grab.add(p)
        taken = await self.leases.acquire(grab)
        for p in taken:
            self.log.info(
                "partition %d had no owner for %.1fs; taking it over", p, now - self._free_since[p]
            )
            self._free_since.pop(p, None)
            self._hold_until[p] = now + 3 * self.options.rebalance_interval_s
            self._start_worker(p)
        return taken

    def _new_worker(self, partition: int, leases: Leases) -> PartitionRunner:
        return PartitionWorker(
            self.redis,
            self.options,
            self.sub,
            partition,
            self.consumer_id,
            leases,
            metrics=self.metrics,
        )

    def _start_worker(self, partition: int) -> None:
        worker = self.runner_factory(partition, self.leases)
        self.workers[partition] = worker
        self._touched.add(partition)
        worker.start()
        self.log.info("now owns partition %d", partition)

    def _on_lease_lost(self, partition: int) -> None:
        """The lease is gone: stop taking entries at once, let the handler in progress end."""
        self.leases.forget(partition)
        worker = self.workers.pop(partition, None)
        if worker is not None:
            self.log.warning(
                "lost the lease on partition %d; stopped taking its messages", partition
            )
            worker.request_stop()
            self._retiring[partition] = worker

    def _release(self, partition: int) -> None:
        """Drain the partition's worker, flush its acks, then give the lease up."""
        worker = self.workers.pop(partition)
        worker.request_stop()

        async def drain_and_release() -> None:
            try:
                await worker.stop(self.options.shutdown_timeout_s)
                await self.leases.release([partition])
                self.log.info("released partition %d", partition)
            except Exception as exc:  # nobody awaits this task: say what happened here
                self.log.warning(
                    "could not release partition %d (%s); its lease expires by itself",
                    partition,
                    exc,
                )
            finally:
                self._releasing.pop(partition, None)

        self._releasing[partition] = asyncio.create_task(drain_and_release())

    def _reap(self) -> None:
        for p, worker in list(self._retiring.items()):
            if worker.done:
                del self._retiring[p]
        for p, worker in list(self.workers.items()):
            if worker.done:  # ended by itself (lease deadline passed): treat the lease as lost
                self._on_lease_lost(p)
                self._retiring.pop(p, None)

    # -- stop --------------------------------------------------------------------------------

    async def stop(self, timeout_s: float = 0.0) -> None:
        """Graceful stop (docs/design.md, "Consumer groups"): stop reading, let handlers finish
        within ``timeout_s``, flush acks, release leases, leave the group, and delete this
        consumer's name from the group's streams where it has nothing pending."""
        await self._end(None)  # a round in progress completes: workers match the leases held
        workers = list(self.workers.values()) + list(self._retiring.values())
        for w in workers:
            w.request_stop()
        await asyncio.gather(*(w.stop(timeout_s) for w in workers))
        if self._releasing:
            await asyncio.wait(list(self._releasing.values()))
        owned = set(self.workers)
        self.workers.clear()
        self._retiring.clear()
        self.sub.owned = set()
        try:
            await self.leases.release(owned)
            await self.membership.leave()
            await self._delete_consumer_name()
        except Exception as exc:
            self.log.warning(
                "could not clean up on stop (%s); leases and membership expire by themselves", exc
            )

    async def _delete_consumer_name(self) -> None:
        # Checked and deleted in one step: a read of ours still in flight that lands later
        # creates the name again with its entries pending (the next owner claims them).
        for p in sorted(self._touched):
            for key in (
                self.keys.stream(self.sub.topic, p),
                self.keys.redeliver(self.sub.topic, p, self.sub.group),
            ):
                await delete_consumer_names(
                    self.redis, key, self.sub.group, [self.consumer_id], min_idle_ms=0
                )
