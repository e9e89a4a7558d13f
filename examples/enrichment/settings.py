"""The example's settings: the starter's sections (``REDIS_STREAMING_REDIS__URL``,
``REDIS_STREAMING_MQ__NAMESPACE``, ``REDIS_STREAMING_MQ__LEASE_TTL_S``...) plus its own
``enrichment`` section (``REDIS_STREAMING_ENRICHMENT__PARTITIONS``...), and its Redis client."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from examples.enrichment.job import PARTITIONS
from redis_streaming import MQOptions
from redis_streaming.cluster import cluster_client, is_cluster_url, ready
from redis_streaming_starter import Settings, load_settings

__all__ = ["EnrichmentSection", "EnrichmentSettings", "connect", "mq_options", "read_settings"]


class EnrichmentSection(BaseModel):
    """The job's own knobs."""

    model_config = ConfigDict(extra="forbid")

    partitions: int = Field(PARTITIONS, ge=1, description="Partitions of every topic it uses.")
    batch_size: int = Field(100, ge=1, description="Entries read and committed per batch.")


class EnrichmentSettings(Settings):
    """The starter's settings with the ``enrichment`` section."""

    enrichment: EnrichmentSection = Field(default_factory=EnrichmentSection)


def read_settings() -> EnrichmentSettings:
    """Settings from the environment (and ``application.yaml``); bad values raise naming the
    variable."""
    return load_settings(settings_cls=EnrichmentSettings, defaults={"app": {"name": "enrichment"}})


def mq_options(settings: Settings) -> MQOptions:
    """The framework's ``MQOptions`` out of the starter's ``mq`` section."""
    return MQOptions.model_validate(settings.mq.model_dump(include=set(MQOptions.model_fields)))


async def connect(settings: Settings, url: str) -> Any:
    """A client for ``url`` (a cluster client for ``redis+cluster://``) that reconnects on its
    own after the server restarts: each command retries twice with backoff, and the runtime
    retries what still fails."""
    cfg = settings.redis
    kwargs: dict[str, Any] = {
        "max_connections": cfg.max_connections,
        "socket_timeout": cfg.socket_timeout_s,
        "socket_connect_timeout": cfg.connect_timeout_s,
        "client_name": cfg.client_name or settings.app.name,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 2),
    }
    if cfg.cluster or (cfg.cluster is None and is_cluster_url(url)):
        return await ready(cluster_client(url, **kwargs))
    # Waits for a free connection rather than raising "Too many connections".
    pool = aioredis.BlockingConnectionPool.from_url(url, timeout=cfg.socket_timeout_s, **kwargs)
    return aioredis.Redis.from_pool(pool)
