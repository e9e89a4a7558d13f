"""The redis-streaming starter: settings, container, ``@listener`` and the application.

Configure with environment variables (``REDIS_STREAMING_<SECTION>__<FIELD>``), write
``@listener`` functions, and run ``RedisStreamingApplication`` (``redis-streaming run
module:app``).
"""

from redis_streaming_starter.application import RedisStreamingApplication
from redis_streaming_starter.container import Container, resolve
from redis_streaming_starter.headers import Header, Headers
from redis_streaming_starter.jobs import job
from redis_streaming_starter.lifecycle import StartupError
from redis_streaming_starter.listener import listener
from redis_streaming_starter.settings import Settings, load_settings

__all__ = [
    "Container",
    "Header",
    "Headers",
    "RedisStreamingApplication",
    "Settings",
    "StartupError",
    "job",
    "listener",
    "load_settings",
    "resolve",
]
