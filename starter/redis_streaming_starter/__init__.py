"""The redis-streaming starter: settings, container, listeners and the actuator.

This release ships the framework (``redis_streaming``) only; the starter's public API (``Settings``,
``Container``, ``listener``, ``RedisStreamingApplication``) is being built and is not exported yet.
"""

__all__: list[str] = []
