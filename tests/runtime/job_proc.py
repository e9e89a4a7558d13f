"""A slow job process for the zombie test (run as a script, not collected by pytest).

  python -m tests.runtime.job_proc   (settings from the environment, as examples.wordcount)

Job ``slowcount``: topic ``zin`` (``{"k": str, "n": int}``) -> a map that stamps the record with
this process's pid, after sleeping -> key by ``k`` -> a running count per key (store ``counts``)
-> topic ``zout`` as ``{"k", "n", "count", "by"}``. The sleep: ``SLOW_FIRST_MS`` (asynchronous:
the process goes on renewing its leases) for each of the first ``SLOW_FIRST_COUNT`` records the
process maps, then ``SLOW_MS`` (blocking: nothing else of the process runs before the batch
goes to its commit). With ``MARK_FILE``, the map creates that file when it starts on record
``n == MARK_N``: a test that stops the process then stops it in the middle of a batch.
``CONSUMER_ID`` sets the process's consumer id (partitions go to members in id order).
Prints "ready" once it runs; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from examples.wordcount.settings import connect, mq_options, read_settings
from pydantic import BaseModel

from redis_streaming import Job, RuntimeOptions

DELAY_S = int(os.environ.get("SLOW_MS", "100")) / 1000
FIRST_DELAY_S = int(os.environ.get("SLOW_FIRST_MS", "0")) / 1000
FIRST_COUNT = int(os.environ.get("SLOW_FIRST_COUNT", "0"))
MARK_FILE = os.environ.get("MARK_FILE")
MARK_N = int(os.environ.get("MARK_N", "-1"))
mapped = 0


class Item(BaseModel):
    k: str
    n: int
    by: int = 0


async def slow(item: Item) -> Item:
    global mapped
    mapped += 1
    if MARK_FILE and item.n == MARK_N:
        Path(MARK_FILE).touch()  # noqa: ASYNC240 - a tiny write, once
    if mapped <= FIRST_COUNT:
        await asyncio.sleep(FIRST_DELAY_S)
    else:
        time.sleep(DELAY_S)  # noqa: ASYNC251 - blocking on purpose (see above)
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
    consumer_id = os.environ.get("CONSUMER_ID")
    handle = await job.run(redis, mq_options(settings), runtime=runtime, consumer_id=consumer_id)
    print("ready", flush=True)
    await stop.wait()
    await handle.stop()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
