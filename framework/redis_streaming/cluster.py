"""Redis Cluster support: telling a cluster client from a plain one, routing, cluster URLs.

The key layout puts every key of one partition in one slot (hash tag ``{T:i}``), so a
partition's commands, pipelines and scripts all go to one node; see docs/design.md, "Redis
Cluster".
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import SlotNotCoveredError

__all__ = ["CLUSTER_SCHEME", "is_cluster", "is_cluster_url", "plain_url", "route"]

CLUSTER_SCHEME = "redis+cluster"
_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}


def is_cluster(redis: Any) -> bool:
    """True when ``redis`` is a ``redis.asyncio.cluster.RedisCluster`` (or a subclass)."""
    return isinstance(redis, AsyncRedisCluster)


def route(redis: Any, key: str) -> dict[str, Any]:
    """Keyword arguments that send a command straight to the node owning ``key``.

    ``{}`` for a plain client. For a cluster client ``{"target_nodes": node}``: needed for
    commands with "movable keys" such as ``XREADGROUP``, whose keys redis-py's cluster client
    otherwise finds by asking a server (``COMMAND GETKEYS``, one more round trip per call).
    Before the client knows the slot map it is ``{}`` too (redis-py then finds the node).
    """
    if not is_cluster(redis):
        return {}
    try:
        return {"target_nodes": redis.get_node_from_key(key)}
    except SlotNotCoveredError:
        return {}


def is_cluster_url(url: str) -> bool:
    """True for ``redis+cluster://`` and ``rediss+cluster://`` URLs."""
    return url.lower().startswith(tuple(_SCHEMES))


def plain_url(url: str) -> str:
    """``url`` with a ``+cluster`` scheme turned into ``redis://`` or ``rediss://``."""
    for scheme, plain in _SCHEMES.items():
        if url.lower().startswith(scheme):
            return plain + url[len(scheme) :]
    return url
