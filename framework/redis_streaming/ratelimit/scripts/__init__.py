"""The rate limiters' Lua scripts: one ``<name>.lua`` file each, beside this module, whose header
names its KEYS, ARGV and return value; run by SHA, reloaded on NOSCRIPT."""

from __future__ import annotations

from redis_streaming._redis.lua import LuaScript

__all__ = ["SLIDING_WINDOW", "TOKEN_BUCKET"]

TOKEN_BUCKET = LuaScript(__name__, "token_bucket")
SLIDING_WINDOW = LuaScript(__name__, "sliding_window")
