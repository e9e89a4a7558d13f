"""Test helpers: waiting on conditions with a deadline (never bare sleeps), fast options."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from redis.asyncio.cluster import RedisCluster

from redis_streaming import MQOptions
from redis_streaming.cluster import ready
from redis_streaming.testing import client_from_url

# Short leases and intervals keep consumer tests quick; the protocol is the same.
FAST = {"lease_ttl_s": 3.0, "rebalance_interval_s": 0.5, "block_ms": 300}


def fast(namespace: str, **extra: object) -> MQOptions:
    """``MQOptions`` for a test namespace with fast rebalancing."""
    return MQOptions.model_validate({"namespace": namespace, **FAST, **extra})


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], timeout_s: float = 10.0, what: str = ""
) -> float:
    """Poll ``condition`` every 20 ms until true; returns the seconds it took."""
    start = time.monotonic()
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or condition}")
        await asyncio.sleep(0.02)


async def moved_replies(cluster_url: str) -> int:
    """MOVED replies the cluster's primaries have sent so far (``INFO errorstats``), asked with
    a client of its own."""
    client = await ready(client_from_url(cluster_url))
    try:
        stats = await client.info("errorstats", target_nodes=RedisCluster.PRIMARIES)
    finally:
        await client.aclose()
    return sum(int(node.get("errorstat_MOVED", {}).get("count", 0)) for node in stats.values())
