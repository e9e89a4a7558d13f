"""Redis Cluster support: telling a cluster client from a plain one, routing, cluster URLs.

The key layout puts every key of one partition in one slot (hash tag ``{T:i}``), so a
partition's commands, pipelines and scripts all go to one node; see docs/design.md, "Redis
Cluster".
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import SlotNotCoveredError

__all__ = [
    "CLIENT_DEFAULTS",
    "CLUSTER_SCHEME",
    "cluster_client",
    "is_cluster",
    "is_cluster_url",
    "plain_url",
    "ready",
    "route",
]

CLUSTER_SCHEME = "redis+cluster"
_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}

CLIENT_DEFAULTS: dict[str, Any] = {"reinitialize_steps": 0}
"""Cluster client settings the framework relies on (``cluster_client`` applies them).

``reinitialize_steps=0``: a ``MOVED`` reply only moves that slot in the client's map. redis-py's
default (5) closes *every* connection of the client on every fifth ``MOVED`` to reload the map,
which breaks the blocking reads other partitions' workers have in flight; and while the map
reloads, commands issued meanwhile go to a random node and collect more ``MOVED`` replies, so one
reload leads to the next. A lost node still reloads the whole map (a connection error does).
"""


def cluster_client(url: str, **kwargs: Any) -> AsyncRedisCluster:
    """A ``redis.asyncio`` cluster client for ``url`` (``redis://``, ``rediss://`` or a
    ``+cluster`` URL of any node) with :data:`CLIENT_DEFAULTS`; ``kwargs`` go to ``from_url``
    and win. ``await ready(client)`` before sharing it between tasks."""
    return AsyncRedisCluster.from_url(plain_url(url), **{**CLIENT_DEFAULTS, **kwargs})


async def ready(redis: Any) -> Any:
    """Load a cluster client's slot map now; returns ``redis`` (a plain client unchanged).

    redis-py's asyncio cluster client loads the map lazily, and decides where a command goes
    *before* loading it: commands that several tasks send to a fresh client at once go to random
    nodes (and come back ``MOVED``). Awaiting this once, before the client is shared, avoids
    that. Cheap when the map is loaded already.
    """
    if is_cluster(redis):
        await redis.initialize()
    return redis


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
