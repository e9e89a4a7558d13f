"""The jobs test application, for ``redis-streaming run tests.starter.apps.jobs_main:app``."""

from redis_streaming_starter import RedisStreamingApplication
from tests.starter.apps.jobs_app.app import JobsContainer

app = RedisStreamingApplication(
    container=JobsContainer, listener_packages=["tests.starter.apps.jobs_app"]
)
