"""The source runner's Lua scripts: one ``<name>.lua`` each, whose header names its KEYS, ARGV
and return value."""

from redis_streaming._redis.lua import LuaScript

__all__ = ["script"]


def script(name: str) -> LuaScript:
    """The script ``<name>.lua`` of this folder."""
    return LuaScript(__name__, name)
