"""Per-partition mover of due retries (and of producer-delayed messages) into their streams."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from redis_streaming.mq.aio import BackgroundLoop, wait_event
from redis_streaming.mq.backoff import Backoff
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.lua import LuaScript
from redis_streaming.mq.redis_errors import is_connection_error, is_noscript
from redis_streaming.mq.subscription import Subscription
from redis_streaming.options import MQOptions

__all__ = ["RetryMover"]

log = logging.getLogger(__name__)
_MOVE = LuaScript("move_delayed")


class RetryMover(BackgroundLoop):
    """Run by a partition's owner: releases the group's due retries into its redelivery stream
    and the partition's due delayed messages into the partition stream (both atomic Lua).

    It sleeps until the earliest due time it knows of (at most ``mq.delayed_interval_ms``, since
    producers may schedule sooner ones), and is woken at once when this worker schedules a retry.
    """

    def __init__(
        self,
        redis: Any,
        options: MQOptions,
        keys: Keys,
        sub: Subscription,
        partition: int,
        retention_max_len: Callable[[], int],
    ) -> None:
        super().__init__()
        self.redis = redis
        self.options = options
        self.retry = keys.retry(sub.topic, partition, sub.group)
        self.redeliver = keys.redeliver(sub.topic, partition, sub.group)
        self.delayed = keys.delayed(sub.topic, partition)
        self.stream = keys.stream(sub.topic, partition)
        self.retention_max_len = retention_max_len
        self.label = f"{sub.topic} partition {partition} group {sub.group}"
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
        pipe = self.redis.pipeline(transaction=False)
        _MOVE.queue(pipe, [self.retry, self.redeliver], [batch, 0])
        _MOVE.queue(pipe, [self.delayed, self.stream], [batch, self.retention_max_len()])
        try:
            replies = await pipe.execute()
        except Exception as exc:
            if not is_noscript(exc):
                raise
            await _MOVE.load(self.redis)
            return 0.0
        moved = [int(r[0]) for r in replies]
        self.moved += sum(moved)
        if any(m >= batch for m in moved):
            return 0.0
        wait = self.options.delayed_interval_ms / 1000
        due = [int(r[1]) for r in replies if int(r[1]) >= 0]
        if due:
            wait = min(wait, max(0.0, (min(due) - time.time() * 1000) / 1000))
        return wait

    async def _run(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            self._wake.clear()
            self._next_pass = float("inf")  # a retry scheduled during the pass wakes the next
            try:
                wait = await self.move_once()
                backoff.reset()
            except Exception as exc:
                wait = backoff.next_delay()
                level = logging.WARNING if is_connection_error(exc) else logging.ERROR
                log.log(level, "%s: retry mover: %s; retrying in %.2fs", self.label, exc, wait)
            self._next_pass = time.monotonic() + wait
            await wait_event(self._wake, wait)
