"""The application the API fuzz runs against (as a process): every endpoint exposed, with
listeners and a job."""

from __future__ import annotations

from redis_streaming_starter import RedisStreamingApplication
from tests.starter.apps.jobs_app.app import JobsContainer

app = RedisStreamingApplication(
    container=JobsContainer,
    listener_packages=["tests.starter.apps.metered", "tests.starter.apps.jobs_app"],
)
