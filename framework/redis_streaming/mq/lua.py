"""Lua scripts from ``scripts/*.lua``: loaded once, run by SHA, reloaded on NOSCRIPT."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

__all__ = ["LuaScript"]


class LuaScript:
    """One script of ``redis_streaming/mq/scripts``; call it with a client, keys and args."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = (
            resources.files("redis_streaming.mq").joinpath("scripts", f"{name}.lua").read_text()
        )
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def __call__(self, redis: Any, keys: list[str], args: list[Any]) -> Any:
        """Run the script; loads it first if the server has not cached it (NOSCRIPT)."""
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await redis.script_load(self.source)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)

    async def load(self, redis: Any) -> None:
        """Cache the script on the server, so pipelined EVALSHA calls find it."""
        await redis.script_load(self.source)
