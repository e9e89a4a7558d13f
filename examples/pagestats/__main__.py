"""``python -m examples.pagestats``: run the page statistics job until SIGTERM or Ctrl-C.

Start as many processes as you like on one Redis (``REDIS_STREAMING_REDIS__URL``): they share
the partitions, and a process that dies (even by ``kill -9``) has its partitions taken over by
the others after ``mq.lease_ttl_s``, open windows and timers included. Without
``REDIS_STREAMING_REDIS__URL`` the job runs on an embedded Valkey (development only) whose URL
it prints, so more processes can join it. Prints ``ready`` once the job runs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import ExitStack

from examples.pagestats.job import INPUT, LATE, OUTPUT, build_job
from examples.pagestats.settings import PagestatsSettings, connect, mq_options, read_settings
from redis_streaming import Admin, RuntimeOptions


async def run(settings: PagestatsSettings, url: str) -> None:
    """Run the job on ``url`` until SIGTERM or SIGINT, then stop it gracefully."""
    options = mq_options(settings)
    section = settings.pagestats
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # the example owns signals, the library never
        loop.add_signal_handler(sig, stop.set)
    redis = await connect(settings, url)
    try:
        admin = Admin(redis, options)
        for topic in (INPUT, OUTPUT, LATE):  # idempotent: every process may do it
            await admin.create_topic(topic, section.partitions)
        job = build_job(section.partitions)
        handle = await job.run(
            redis, options, runtime=RuntimeOptions(batch_size=section.batch_size)
        )
        print("ready", flush=True)
        try:
            await stop.wait()
        finally:
            await handle.stop()
    finally:
        await redis.aclose()


def main() -> None:
    settings = read_settings()
    logging.basicConfig(level=settings.logging.level, format=settings.logging.format)
    with ExitStack() as stack:
        url = settings.redis.url
        if not url:
            from redis_streaming.embedded import RedisServer

            server = stack.enter_context(RedisServer())
            url = server.url
            print(f"embedded server for the example at {url} (development only)", flush=True)
        asyncio.run(run(settings, url))


if __name__ == "__main__":
    main()
