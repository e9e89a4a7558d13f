"""Shared helpers of the benchmark scripts: a private server and best-of-rounds timing."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Awaitable, Callable


def server_url() -> tuple[str, object | None]:
    """REDIS_URL, or a private server started for this run (returned so it can be closed)."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url, None
    from redis_streaming.testing import RedisServer

    server = RedisServer().start()
    return server.url, server


async def rate(fn: Callable[[], Awaitable[int]]) -> float:
    """Messages per second of one call of ``fn`` (which returns how many it handled)."""
    start = time.perf_counter()
    n = await fn()
    return n / (time.perf_counter() - start)


def summary(name: str, framework: list[float], raw: list[float], target: float) -> str:
    """One line: median rates of both and the ratio of the medians against the target."""
    f, r = statistics.median(framework), statistics.median(raw)
    ratio = f / r
    verdict = "ok" if ratio >= target else "BELOW TARGET"
    return (
        f"{name:<28} framework {f:>9,.0f} msg/s   raw {r:>9,.0f} msg/s   "
        f"ratio {ratio:.2f} (target >= {target}) {verdict}"
    )
