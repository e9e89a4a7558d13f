"""The application the API fuzz runs against (as a process): every endpoint exposed."""

from __future__ import annotations

from redis_streaming_starter import RedisStreamingApplication

app = RedisStreamingApplication(listener_packages=["tests.starter.apps.metered"])
