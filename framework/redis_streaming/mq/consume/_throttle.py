"""A subscription's rate limit as one partition worker applies it: a turn per entry, waited
for before the handler runs (reading waits with it), interruptible by stop and lease loss."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis_streaming._redis.background import wait_event
from redis_streaming.ratelimit import RateLimit, RateLimiter, limiter

__all__ = ["Throttle", "group_limiter_name"]


def group_limiter_name(topic: str, group: str) -> str:
    """The limiter name of a subscription's rate limit: one limit per topic and group, shared
    by every consumer of the group (key ``{ns}:ratelimit:{<topic>:<group>}``)."""
    return f"{topic}:{group}"


class Throttle:
    """Takes a turn from the group's limiter before each entry is handled.

    Turns are reserved in chunks of up to ``limit.max_at_once`` (the burst, or a sliding
    window's count) when the batch has that many entries left, so a limit with a burst costs
    one round trip per chunk, never more than the limit allows at once. A reservation's wait is
    slept in slices of at most ``slice_s``, ending early when ``taking()`` turns false (stop
    requested, lease lost); the turns then left unused are forfeited (the limit errs on the
    slow side) and the entries stay pending, as on any stop. Nothing is ever dropped.
    """

    def __init__(
        self,
        redis: Any,
        namespace: str,
        topic: str,
        group: str,
        limit: RateLimit,
        taking: Callable[[], bool],
        stopping: asyncio.Event,
        *,
        slice_s: float,
    ) -> None:
        self.limiter: RateLimiter = limiter(
            redis, group_limiter_name(topic, group), limit, namespace=namespace
        )
        self.limit = limit
        self._taking = taking
        self._stopping = stopping
        self._slice_s = max(slice_s, 0.01)
        self._credit = 0  # turns reserved (and waited for) but not yet used by an entry
        self.waited_s = 0.0  # total time spent waiting for turns

    def read_count(self, batch_size: int) -> int:
        """Entries to read at once: ``batch_size``, but no more than about a second's worth
        (or one chunk), so a slow limit does not hold many entries read but unhandled."""
        second = math.ceil(self.limit.per_second)
        return max(1, min(batch_size, max(self.limit.max_at_once, second)))

    def new_batch(self) -> None:
        """Forget turns left over from an interrupted batch (they are not carried over)."""
        self._credit = 0

    async def take(self, left: int, before_wait: Callable[[], Awaitable[None]]) -> bool:
        """Wait for the next entry's turn; ``left`` entries of the batch remain, this one
        included. ``before_wait`` runs before a wait longer than ``slice_s`` (to send the
        acknowledgements queued so far). True when the entry may be handled."""
        if self._credit == 0:
            n = min(max(left, 1), self.limit.max_at_once)
            wait_s = await self.limiter.reserve(n)
            self._credit = n
            if wait_s > 0:
                if wait_s > self._slice_s:
                    await before_wait()
                await self._sleep(wait_s)
        if not self._taking():
            return False
        self._credit -= 1
        return True

    async def _sleep(self, wait_s: float) -> None:
        start = time.monotonic()
        deadline = start + wait_s
        while self._taking():
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                break
            await wait_event(self._stopping, min(left_s, self._slice_s))
        self.waited_s += time.monotonic() - start
