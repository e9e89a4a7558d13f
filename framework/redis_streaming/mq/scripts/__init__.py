"""The messaging Lua scripts: one ``<name>.lua`` file each, beside this module, whose header
names its KEYS, ARGV and return value. Every multi-key change that must be atomic is one of them."""

from redis_streaming._redis.lua import LuaScript

__all__ = ["script"]


def script(name: str) -> LuaScript:
    """The script ``<name>.lua`` of this folder."""
    return LuaScript(__name__, name)
