"""Lua scripts of a package's folder: loaded once, run by SHA, reloaded on NOSCRIPT.

Redis Cluster: every script's KEYS share one hash tag, so each call runs on the node owning
that slot. The cluster client routes ``EVALSHA`` by its keys (and refuses a call whose keys
are in different slots). A NOSCRIPT reply (a restarted node, or a replica promoted by a
failover: script caches are not replicated) reloads the script on the node that gave it; ``load``
caches it on the node of a key, or on every primary, and ``run_pipelined`` on NOSCRIPT on the
nodes of its calls' keys. Loading only where it is needed keeps working while some unrelated
primary is down.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from redis_streaming._redis.errors import is_noscript
from redis_streaming.cluster import is_cluster

__all__ = ["LuaScript"]


class LuaScript:
    """The script ``<name>.lua`` of package ``package`` (a folder of scripts with an
    ``__init__.py``, e.g. ``redis_streaming.mq.scripts``); call it with a client, keys and
    args."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, package: str, name: str) -> None:
        self.name = name
        self.source = resources.files(package).joinpath(f"{name}.lua").read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def __call__(self, redis: Any, keys: list[str], args: list[Any]) -> Any:
        """Run the script; loads it first if the server has not cached it (NOSCRIPT)."""
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.load(redis, *keys[:1])
            return await redis.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: Any, keys: list[str], args: list[Any]) -> None:
        """Add a call to a (non-transactional) pipeline; :meth:`load` the script first.

        Sent as a raw ``EVALSHA``: redis-py's cluster pipeline refuses its ``evalsha`` method
        but routes the raw command by its keys like any other.
        """
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    async def run_pipelined(
        self, redis: Any, calls: Sequence[tuple[list[str], list[Any]]]
    ) -> list[Any]:
        """Run the script once per ``(keys, args)`` in one non-transactional pipeline; returns
        the replies in order.

        On NOSCRIPT (the server lost its script cache, e.g. it restarted) the script is
        :meth:`load`-ed and the whole pipeline sent once more, so calls that had already run
        run again: each call must be safe to repeat. A second NOSCRIPT is raised.
        """
        if not calls:
            return []
        try:
            return await self._pipeline(redis, calls)
        except Exception as exc:
            if not is_noscript(exc):
                raise
        await self.load(redis, *{keys[0] for keys, _ in calls if keys})
        return await self._pipeline(redis, calls)

    async def _pipeline(
        self, redis: Any, calls: Sequence[tuple[list[str], list[Any]]]
    ) -> list[Any]:
        pipe = redis.pipeline(transaction=False)
        for keys, args in calls:
            self.queue(pipe, keys, args)
        return list(await pipe.execute())

    async def load(self, redis: Any, *keys: str) -> None:
        """Cache the script on the server, so pipelined calls find it. On a cluster client:
        on the nodes owning ``keys``, or on every primary when none are given."""
        if keys and is_cluster(redis):
            nodes = {n.name: n for n in (redis.get_node_from_key(k) for k in keys)}
            await redis.execute_command("SCRIPT LOAD", self.source, target_nodes=[*nodes.values()])
        else:
            await redis.script_load(self.source)
