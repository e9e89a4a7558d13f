"""Token bucket and sliding window limiters, shared across processes through one Redis key."""

from __future__ import annotations

import asyncio
from typing import Any

from redis_streaming._redis.lua import LuaScript
from redis_streaming.errors import InvalidArgument
from redis_streaming.ratelimit.keys import RateLimitKeys
from redis_streaming.ratelimit.scripts import SLIDING_WINDOW, TOKEN_BUCKET
from redis_streaming.ratelimit.spec import RateLimit

__all__ = ["RateLimiter", "SlidingWindow", "TokenBucket", "limiter"]


class RateLimiter:
    """A rate limit on the name ``name``: global for that name across every process and client
    of the same Redis (and namespace). Time is the server's (``TIME`` inside the script), so
    clients with skewed clocks agree. Nothing is ever dropped: a caller over the limit waits.

    :meth:`acquire` waits its turn; :meth:`try_acquire` takes only what is there now;
    :meth:`reserve` takes a turn and says how long to wait, for callers that wait their own
    way (interruptibly). Use :class:`TokenBucket` or :class:`SlidingWindow` (or
    :func:`limiter`, which picks by ``limit.algorithm``).
    """

    _script: LuaScript

    def __init__(self, redis: Any, name: str, limit: str | RateLimit, *, namespace: str = "rs"):
        self.redis = redis
        self.name = name
        self.limit = RateLimit.parse(limit)
        self.key = RateLimitKeys(namespace).limiter(name)

    def _args(self) -> list[Any]:
        raise NotImplementedError

    async def _call(self, n: int, mode: str) -> float:
        if not isinstance(n, int) or not 1 <= n <= self.limit.max_at_once:
            raise InvalidArgument(
                f"rate limiter {self.name!r} ({self.limit}) takes 1 to "
                f"{self.limit.max_at_once} at once, not {n!r}; raise the burst (or the count "
                "of a sliding window) to take more at once"
            )
        wait_us = await self._script(self.redis, [self.key], [*self._args(), n, mode])
        return int(wait_us) / 1_000_000

    async def reserve(self, n: int = 1) -> float:
        """Take ``n`` now, in turn after earlier reservations; returns the seconds to wait
        before using them (0: at once). A caller that gives up waiting forfeits them: the
        limit then errs on the slow side, never the fast one."""
        return await self._call(n, "reserve")

    async def try_acquire(self, n: int = 1) -> float:
        """Take ``n`` if they are there now (returns 0.0); otherwise take nothing and return
        the seconds after which they would be (behind any reservations already made)."""
        return await self._call(n, "try")

    async def acquire(self, n: int = 1) -> float:
        """Take ``n``, sleeping until they are the caller's; returns the seconds waited.
        Cancelling the wait forfeits them (see :meth:`reserve`)."""
        wait_s = await self.reserve(n)
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        return wait_s

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {str(self.limit)!r})"


class TokenBucket(RateLimiter):
    """A bucket of ``limit.burst`` tokens refilled at ``limit.count`` per ``limit.period_s``;
    each acquisition takes tokens. In any window of ``W`` seconds at most
    ``burst + W * count / period_s`` are taken. Key: a HASH ``{ns}:ratelimit:{<name>}``."""

    _script = TOKEN_BUCKET

    def __init__(self, redis: Any, name: str, limit: str | RateLimit, *, namespace: str = "rs"):
        super().__init__(redis, name, limit, namespace=namespace)
        if self.limit.algorithm != "token_bucket":
            raise InvalidArgument(f"TokenBucket needs a token bucket limit, not {self.limit}")

    def _args(self) -> list[Any]:
        rate_per_us = self.limit.count / (self.limit.period_s * 1_000_000)
        return [repr(rate_per_us), self.limit.burst]


class SlidingWindow(RateLimiter):
    """At most ``limit.count`` acquisitions in any window of ``limit.period_s`` seconds (a log
    of their times). Key: a ZSET ``{ns}:ratelimit:{<name>}`` with one member per permit."""

    _script = SLIDING_WINDOW

    def __init__(self, redis: Any, name: str, limit: str | RateLimit, *, namespace: str = "rs"):
        super().__init__(redis, name, limit, namespace=namespace)
        if self.limit.algorithm != "sliding_window":
            raise InvalidArgument(
                f"SlidingWindow needs a limit with algorithm=sliding_window, not {self.limit}"
            )

    def _args(self) -> list[Any]:
        return [self.limit.count, round(self.limit.period_s * 1_000_000)]


def limiter(redis: Any, name: str, limit: str | RateLimit, *, namespace: str = "rs") -> RateLimiter:
    """A :class:`TokenBucket` or :class:`SlidingWindow` for ``limit`` (as its algorithm says)."""
    spec = RateLimit.parse(limit)
    cls = SlidingWindow if spec.algorithm == "sliding_window" else TokenBucket
    return cls(redis, name, spec, namespace=namespace)
