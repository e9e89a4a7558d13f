"""Redis behind Sentinel (``redis.sentinel``): a client of the current master that asks the
Sentinels where the master is whenever it opens a connection, so it follows a failover.

redis-py's ``SentinelConnectionPool`` does the following: a connection to a master that was
demoted (``READONLY``, or the ``UNBLOCKED`` a demoted master sends to blocked readers) is closed
and the Sentinels are asked again; a connection lost with the killed master fails the command in
flight, and the next one connects to whichever node the Sentinels name then. The framework's
loops back off and retry on such errors, and its Lua scripts load again on ``NOSCRIPT`` (a
promoted replica has no script cache).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
from redis.exceptions import AuthenticationError, ResponseError

from redis_streaming import ConfigurationError
from redis_streaming.integration import is_connection_error
from redis_streaming_starter.settings import Settings
from redis_streaming_starter.settings_sentinel import SentinelSettings

__all__ = ["BlockingSentinelPool", "is_sentinel", "sentinel_client", "sentinel_of"]

log = logging.getLogger("redis_streaming_starter")


class BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """A Sentinel-managed pool that waits for a free connection (up to its ``timeout``) rather
    than raising "Too many connections", as the starter's plain pool does; closing it closes
    the clients of the Sentinels too."""

    async def aclose(self) -> None:
        await super().aclose()
        await self.sentinel_manager.aclose()


def is_sentinel(redis: Any) -> bool:
    """True for a client built by :func:`sentinel_client` (or ``Sentinel.master_for``)."""
    return isinstance(getattr(redis, "connection_pool", None), SentinelConnectionPool)


def sentinel_of(redis: Any) -> tuple[Sentinel, str]:
    """The ``Sentinel`` manager and master name of a Sentinel-managed client."""
    pool = redis.connection_pool
    return pool.sentinel_manager, str(pool.service_name)


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())


async def sentinel_client(settings: Settings, kwargs: dict[str, Any]) -> Any:
    """A client of the master ``redis.sentinel`` names; ``kwargs`` are the data connections'
    options (pool size, timeouts, client name, retry).

    At startup the Sentinels are asked for the master once: Sentinels that answer but do not
    monitor ``master_name``, or that refuse their password, and a master that refuses the data
    nodes' credentials, are configuration errors; Sentinels that are all unreachable are not
    (the application starts, health reports DOWN, the client connects once they answer).
    """
    cfg = settings.redis.sentinel
    assert cfg is not None
    sentinel = Sentinel(
        cfg.addresses(),
        sentinel_kwargs={
            "username": cfg.sentinel_username,
            "password": _secret(cfg.sentinel_password),
            "socket_timeout": cfg.socket_timeout_s,
            "socket_connect_timeout": cfg.socket_timeout_s,
        },
    )
    client = sentinel.master_for(
        cfg.master_name,
        connection_pool_class=BlockingSentinelPool,
        timeout=settings.redis.socket_timeout_s,
        db=cfg.db,
        username=cfg.username,
        password=_secret(cfg.password),
        **kwargs,
    )
    try:
        await _check(client, sentinel, cfg)
    except BaseException:
        await client.aclose()
        raise
    return client


async def _check(client: Any, sentinel: Sentinel, cfg: SentinelSettings) -> None:
    try:
        host, port = await sentinel.discover_master(cfg.master_name)
    except MasterNotFoundError as exc:
        await _explain(sentinel, cfg, exc)
        return
    try:
        await client.ping()
    except AuthenticationError as exc:
        raise ConfigurationError(
            f"the Redis master {host}:{port} (found through the Sentinels) refused the "
            f"credentials of redis.sentinel ({type(exc).__name__}: {exc}); check "
            "REDIS_STREAMING_REDIS__SENTINEL__USERNAME and __PASSWORD (the data nodes' user "
            "and password, not the Sentinels')"
        ) from exc
    except Exception as exc:
        if not is_connection_error(exc):
            raise
        log.warning(
            "redis: the master %s:%s named by the Sentinels does not answer (%s); starting "
            "anyway, the client connects once it (or a promoted replica) does",
            host,
            port,
            exc,
        )
        return
    log.info("redis: Sentinel %s: master at %s:%s", cfg.described(), host, port)


async def _explain(sentinel: Sentinel, cfg: SentinelSettings, exc: MasterNotFoundError) -> None:
    """Raise ``ConfigurationError`` for what settings can fix; log the rest and return."""
    text = str(exc)
    refused = re.search(r"(AuthenticationError|NOAUTH|WRONGPASS)[^,)]*", text)
    if refused:
        raise ConfigurationError(
            f"the Sentinels {', '.join(cfg.nodes)} refused the credentials of redis.sentinel "
            f"({refused[0].strip()}); check "
            "REDIS_STREAMING_REDIS__SENTINEL__SENTINEL_USERNAME and __SENTINEL_PASSWORD (the "
            "Sentinels' own password, their requirepass)"
        ) from exc
    monitored: set[str] = set()
    answered = False
    for node in sentinel.sentinels:
        try:
            masters = await node.sentinel_masters()
        except Exception as error:
            if is_connection_error(error) or isinstance(error, ResponseError):
                continue
            raise
        answered = True
        monitored.update(str(name) for name in masters)
    if answered and cfg.master_name not in monitored:
        known = ", ".join(sorted(monitored)) or "none"
        raise ConfigurationError(
            f"the Sentinels {', '.join(cfg.nodes)} monitor no master named "
            f"{cfg.master_name!r} (they monitor: {known}); fix "
            "REDIS_STREAMING_REDIS__SENTINEL__MASTER_NAME"
        ) from exc
    log.warning(
        "redis: no Sentinel of %s names a master now (%s); starting anyway, the client "
        "connects once one does",
        cfg.described(),
        text,
    )
