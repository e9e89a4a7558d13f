"""``python -m examples.cdc``: capture table ``accounts`` of ``CDC_DATABASE_URL`` and keep the
Redis hash ``accounts:balance`` in step until SIGTERM or Ctrl-C.

Redis: ``REDIS_STREAMING_REDIS__URL`` (default: an embedded Valkey, development only). The
database needs ``wal_level=logical``. Prints ``ready`` once running.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from contextlib import ExitStack

from redis.asyncio import Redis

from examples.cdc.pipeline import create_table, running
from redis_streaming import MQOptions


async def run(redis_url: str, database_url: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # the example owns signals, the library never
        loop.add_signal_handler(sig, stop.set)
    create_table(database_url)
    redis = Redis.from_url(redis_url)
    try:
        async with running(redis, MQOptions(), database_url):
            print("ready", flush=True)
            await stop.wait()
    finally:
        await redis.aclose()


def main() -> None:
    database_url = os.environ.get("CDC_DATABASE_URL")
    if not database_url:
        sys.exit("set CDC_DATABASE_URL to a PostgreSQL URL (wal_level=logical)")
    with ExitStack() as stack:
        url = os.environ.get("REDIS_STREAMING_REDIS__URL")
        if not url:
            from redis_streaming.embedded import RedisServer

            url = stack.enter_context(RedisServer()).url
            print(f"embedded server for the example at {url} (development only)", flush=True)
        asyncio.run(run(url, database_url))


if __name__ == "__main__":
    main()
