"""The registry's Lua scripts: one ``<name>.lua`` file each, beside this module, whose header
names its KEYS, ARGV and return value; run by SHA, reloaded on NOSCRIPT."""

from __future__ import annotations

from redis_streaming._redis.lua import LuaScript

__all__ = ["DEREGISTER", "EXPIRED", "LIVE", "REGISTER", "SWEEP", "UPDATE"]

REGISTER = LuaScript(__name__, "register")
UPDATE = LuaScript(__name__, "update")
DEREGISTER = LuaScript(__name__, "deregister")
EXPIRED = LuaScript(__name__, "expired")
SWEEP = LuaScript(__name__, "sweep")
LIVE = LuaScript(__name__, "live")
