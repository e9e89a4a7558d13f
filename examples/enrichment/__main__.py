"""``python -m examples.enrichment``: run the enrichment job until SIGTERM or Ctrl-C.

Start as many processes as you like on one Redis (``REDIS_STREAMING_REDIS__URL``): they share
the partitions of both topics. Without ``REDIS_STREAMING_REDIS__URL`` the job runs on an
embedded Valkey (development only) whose URL it prints. Prints ``ready`` once the job runs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import ExitStack

from examples.enrichment.job import CUSTOMERS, ORDERS, OUTPUT, build_job
from examples.enrichment.settings import (
    EnrichmentSettings,
    connect,
    mq_options,
    read_settings,
)
from redis_streaming import Admin, RuntimeOptions


async def run(settings: EnrichmentSettings, url: str) -> None:
    """Run the job on ``url`` until SIGTERM or SIGINT, then stop it gracefully."""
    options = mq_options(settings)
    section = settings.enrichment
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # the example owns signals, the library never
        loop.add_signal_handler(sig, stop.set)
    redis = await connect(settings, url)
    try:
        admin = Admin(redis, options)
        # Idempotent: every process may do it. The table and the stream it joins must have the
        # same partition count (the job checks it at start).
        for topic in (CUSTOMERS, ORDERS, OUTPUT):
            await admin.create_topic(topic, section.partitions)
        job = build_job(section.partitions)
        runtime = RuntimeOptions(batch_size=section.batch_size)
        handle = await job.run(redis, options, runtime=runtime)
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
