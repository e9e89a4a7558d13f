"""Per-partition mover of a group's due retries into its redelivery stream."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from redis_streaming._redis.background import BackgroundLoop, Prefixed, log_retry, wait_event
from redis_streaming._redis.backoff import Backoff
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.scripts import script

__all__ = ["RetryMover"]

log = logging.getLogger(__name__)
_MOVE = script("move_due_members")


class RetryMover(BackgroundLoop):
    """Run by a partition's owner: releases the group's due retries into its redelivery stream
    (one atomic script per pass).

    Retries of a partition and group are scheduled by its owner only, so the mover sleeps until
    the earliest due time it knows of and is woken at once when its worker schedules a sooner
    one. It still looks every ``mq.rebalance_interval_s`` (a former owner finishing a handler
    after losing the lease may have scheduled one). Producer-delayed messages are moved by the
    consumer's ``OwnedDelayedMover`` or a ``DelayedMover`` (``mq.maintenance.delayed``).
    """

    def __init__(
        self, redis: Any, options: MQOptions, keys: Keys, topic: str, partition: int, group: str
    ) -> None:
        super().__init__()
        self.redis = redis
        self.options = options
        self.retry = keys.retry(topic, partition, group)
        self.redeliver = keys.redeliver(topic, partition, group)
        self.label = f"{topic} partition {partition} group {group}"
        self._log = Prefixed(log, f"{self.label}: retry mover")
        self.moved = 0
        self._wake = asyncio.Event()
        self._next_pass = 0.0

    def start(self) -> None:
        """Start the mover task."""
        self._launch(f"rs-retry-mover-{self.retry}")

    def wake(self, due: float) -> None:
        """A retry was scheduled for monotonic time ``due``: pass earlier if it is sooner than
        the next planned pass."""
        if due < self._next_pass:
            self._wake.set()

    async def stop(self) -> None:
        """End the mover; a move in progress completes in Redis (it is one script)."""
        self._wake.set()
        await super().stop()

    async def move_once(self) -> float:
        """One pass; returns seconds until the next known due time (capped)."""
        batch = self.options.delayed_batch
        reply = await _MOVE(self.redis, [self.retry, self.redeliver], [batch, 0])
        moved, due = int(reply[0]), int(reply[1])
        self.moved += moved
        if moved >= batch:
            return 0.0
        wait = self.options.rebalance_interval_s
        if due >= 0:
            wait = min(wait, max(0.0, (due - time.time() * 1000) / 1000))
        return wait

    async def _run(self) -> None:
        # A consumer taking many partitions at once starts as many movers: their first passes
        # are spread over up to 200 ms, so they do not all need a pooled connection at the same
        # moment as the workers' first reads. A retry scheduled meanwhile still wakes it.
        first = random.uniform(0.0, min(0.2, self.options.rebalance_interval_s))
        self._next_pass = time.monotonic() + first
        await wait_event(self._wake, first)
        await self._supervise(self._pass, Backoff(), self._after_error, wake=self._wake)

    async def _pass(self) -> float:
        self._wake.clear()
        self._next_pass = float("inf")  # a retry scheduled during the pass wakes the next
        return self._planned(await self.move_once())

    async def _after_error(self, exc: Exception, backoff: Backoff) -> float:
        wait = backoff.next_delay()
        log_retry(self._log, exc, wait)
        return self._planned(wait)

    def _planned(self, wait: float) -> float:
        self._next_pass = time.monotonic() + wait
        return wait
