"""Test helpers: the fast settings (one table), components that stop when the test ends, an
httpx client on a running application, and waiting on conditions with a deadline (never bare
sleeps)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from redis.asyncio.cluster import RedisCluster

from redis_streaming import MQOptions
from redis_streaming.cluster import ready
from redis_streaming.registry import RegistryOptions
from redis_streaming.testing import client_from_url
from redis_streaming_starter import Settings

# Short leases, intervals and TTLs keep the tests quick; the protocols are the same as with the
# defaults. One section per settings section: ``MQOptions`` and the starter's ``mq``,
# ``RegistryOptions`` and the starter's ``registry``.
FAST: dict[str, dict[str, float]] = {
    "mq": {"lease_ttl_s": 3.0, "rebalance_interval_s": 0.5, "block_ms": 300},
    "registry": {
        "ttl_s": 1.0,
        "heartbeat_interval_s": 0.2,
        "sweep_interval_s": 0.2,
        "health_check_interval_s": 0.2,
        "health_check_timeout_s": 0.2,
    },
}
# An application under test stops within 5 s even with a handler stuck (the default is 30 s).
APP_SHUTDOWN_TIMEOUT_S = 5.0


def fast_mq(namespace: str, **extra: object) -> MQOptions:
    """``MQOptions`` for ``namespace`` with ``FAST`` leases and intervals, and ``extra``."""
    return MQOptions.model_validate({"namespace": namespace, **FAST["mq"], **extra})


def fast_registry(namespace: str, **extra: object) -> RegistryOptions:
    """``RegistryOptions`` for ``namespace`` with the ``FAST`` TTL and intervals, and ``extra``."""
    return RegistryOptions.model_validate({"namespace": namespace, **FAST["registry"], **extra})


def fast_settings(url: str, namespace: str, **sections: dict[str, Any]) -> Settings:
    """The starter's ``Settings`` on ``url`` with ``namespace`` and the ``FAST`` ``mq`` values;
    each of ``sections`` (``app={...}``, ``mq={...}``, ...) adds to its section."""
    data: dict[str, dict[str, Any]] = {
        "redis": {"url": url},
        "mq": {"namespace": namespace, **FAST["mq"], "shutdown_timeout_s": APP_SHUTDOWN_TIMEOUT_S},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return Settings.model_validate(data)


def fast_env() -> dict[str, str]:
    """The ``FAST`` ``mq`` values as the starter's environment variables, for a subprocess."""
    mq = {**FAST["mq"], "shutdown_timeout_s": APP_SHUTDOWN_TIMEOUT_S}
    return {f"REDIS_STREAMING_MQ__{name.upper()}": str(value) for name, value in mq.items()}


@asynccontextmanager
async def running(*components: AbstractAsyncContextManager[Any]) -> AsyncIterator[None]:
    """Enter (start) each component in turn; on the way out, also when the test fails, exit
    (stop) each one that started, the last first."""
    async with AsyncExitStack() as stack:
        for component in components:
            await stack.enter_async_context(component)
        yield


@asynccontextmanager
async def serving(
    asgi: Any, base_url: str = "http://test", *, started: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the ASGI app ``asgi`` (an application's ``asgi``, or a FastAPI app
    built around it); with ``started``, inside the app's lifespan, as under uvicorn."""
    async with AsyncExitStack() as stack:
        if started:
            await stack.enter_async_context(asgi.router.lifespan_context(asgi))
        transport = httpx.ASGITransport(app=asgi)
        yield await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url=base_url)
        )


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


async def server_ms(redis: Any) -> int:
    """The server's clock (``TIME``) in milliseconds."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def moved_replies(cluster_url: str) -> int:
    """MOVED replies the cluster's primaries have sent so far (``INFO errorstats``), asked with
    a client of its own."""
    client = await ready(client_from_url(cluster_url))
    try:
        stats = await client.info("errorstats", target_nodes=RedisCluster.PRIMARIES)
    finally:
        await client.aclose()
    return sum(int(node.get("errorstat_MOVED", {}).get("count", 0)) for node in stats.values())
