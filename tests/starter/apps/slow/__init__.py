"""An application whose handler takes a while, for the SIGTERM test (run as a process)."""

from __future__ import annotations

import asyncio

from redis_streaming import Message
from redis_streaming_starter import RedisStreamingApplication, listener, resolve

app = RedisStreamingApplication(listener_packages=["tests.starter.apps.slow"])


@listener("work", group="workers")
async def work(job: dict, message: Message) -> None:  # type: ignore[type-arg]
    redis = await resolve(app.container.redis)
    await redis.rpush("slow:started", message.id)
    await asyncio.sleep(job["seconds"])
    await redis.rpush("slow:finished", message.id)
