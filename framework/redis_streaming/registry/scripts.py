"""The registry's Lua scripts (``registry/scripts/*.lua``), run by SHA, reloaded on NOSCRIPT."""

from __future__ import annotations

import hashlib
from importlib import resources

from redis_streaming.mq.lua import LuaScript

__all__ = ["DEREGISTER", "EXPIRED", "LIVE", "REGISTER", "SWEEP", "UPDATE"]


class _RegistryScript(LuaScript):
    """A :class:`LuaScript` read from this package's ``scripts`` folder."""

    __slots__ = ()

    def __init__(self, name: str) -> None:  # no super().__init__: it reads the mq folder
        self.name = name
        self.source = (
            resources.files("redis_streaming.registry")
            .joinpath("scripts", f"{name}.lua")
            .read_text()
        )
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()


REGISTER = _RegistryScript("register")
UPDATE = _RegistryScript("update")
DEREGISTER = _RegistryScript("deregister")
EXPIRED = _RegistryScript("expired")
SWEEP = _RegistryScript("sweep")
LIVE = _RegistryScript("live")
