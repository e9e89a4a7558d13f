"""A slow job process for the zombie test (run as a script, not collected by pytest).

  python -m tests.runtime.job_proc   (settings from the environment, as examples.wordcount)

Job ``slowcount``: topic ``zin`` (``{"k": str, "n": int}``) -> a map that sleeps ``SLOW_MS``
milliseconds per record (a blocking sleep: a pause lands mid-batch, and nothing else of the
process runs until the batch goes to its commit) and stamps the record with this process's pid
-> key by ``k`` -> a running count per key (store ``counts``) -> topic ``zout`` as
``{"k", "n", "count", "by"}``. Prints "ready" once it runs; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from examples.wordcount.settings import connect, mq_options, read_settings
from pydantic import BaseModel

from redis_streaming import Job, RuntimeOptions

DELAY_S = int(os.environ.get("SLOW_MS", "100")) / 1000


class Item(BaseModel):
    k: str
    n: int
    by: int = 0


def slow(item: Item) -> Item:
    time.sleep(DELAY_S)
    return item.model_copy(update={"by": os.getpid()})


def count(state: int | None, item: Item) -> tuple[int, dict[str, object]]:
    total = (state or 0) + 1
    return total, {"k": item.k, "n": item.n, "count": total, "by": item.by}


def build_job(partitions: int) -> Job:
    job = Job("slowcount", partitions=partitions)
    (
        job.source("zin", value_type=Item)
        .map(slow)
        .key_by(lambda item: item.k)
        .stateful_map(count, name="counts")
        .to("zout")
    )
    return job


async def main() -> None:
    settings = read_settings()
    assert settings.redis.url
    redis = await connect(settings, settings.redis.url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    runtime = RuntimeOptions(batch_size=settings.wordcount.batch_size)
    job = build_job(settings.wordcount.partitions)
    handle = await job.run(redis, mq_options(settings), runtime=runtime)
    print("ready", flush=True)
    await stop.wait()
    await handle.stop()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
