"""Shared helpers of the benchmark scripts: a private server and best-of-rounds timing."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any


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


def run_with_server(main: Callable[[str], Coroutine[Any, Any, None]]) -> None:
    """Run ``main(url)`` against REDIS_URL or a private server stopped afterwards."""
    url, server = server_url()
    try:
        asyncio.run(main(url))
    finally:
        if server is not None:
            server.close()  # type: ignore[attr-defined]


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser described by the first paragraph of a script's docstring."""
    return argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
