"""Closing a watch ends its iteration at once, also while it backs off from a lost Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from redis_streaming._redis.backoff import Backoff
from redis_streaming.registry import ServiceDiscovery
from redis_streaming.testing import RedisServer
from tests.helpers import fast_registry, wait_until


async def test_aclose_ends_an_iteration_that_backs_off(rs_server: RedisServer) -> None:
    """A watch that cannot reach Redis retries after a backoff of up to 5 s. ``aclose()`` from
    another task must end the iteration at once, not when that wait is over."""
    redis = aioredis.Redis.from_url(rs_server.url, socket_connect_timeout=1)
    try:
        watch = ServiceDiscovery(redis, fast_registry("ns")).watch("orders")
        watch._backoff = Backoff(initial_s=60.0, max_s=60.0)  # each wait 30 to 60 s
        rs_server.stop()
        step = asyncio.ensure_future(anext(watch))
        await wait_until(lambda: watch.last_error is not None, 10, "the watch to back off")
        assert not step.done()
        await watch.aclose()
        async with asyncio.timeout(2):
            with pytest.raises(StopAsyncIteration):
                await step
    finally:
        await redis.aclose()
