"""Lua scripts of the runtime (loaded by ``LuaScript("redis_streaming.runtime.scripts", name)``)."""
