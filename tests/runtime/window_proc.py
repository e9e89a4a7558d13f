"""A windowed job process for the crash test (run as a script, not collected by pytest).

  python -m tests.runtime.window_proc   (settings from the environment, as examples.pagestats)

Job ``pagestats-direct``: the page statistics of ``examples.pagestats`` (the same windows,
grace, idle timeout, aggregations and output records) computed straight on the input
partitions, without ``key_by``: the test sends the clicks keyed by page, in event-time order,
so each page's clicks are on one partition in order and none is ever late. Reads ``clicks``,
writes ``page-stats`` and ``clicks-late`` (the test creates them). Prints "ready" once it runs;
SIGTERM stops it gracefully.
"""

from __future__ import annotations

import asyncio
import signal

from examples.pagestats.job import INPUT, OUTPUT, Click, window_stats
from examples.pagestats.settings import connect, mq_options, read_settings

from redis_streaming import Job, RuntimeOptions

JOB = "pagestats-direct"


def build_job(partitions: int) -> Job:
    job = Job(JOB, partitions=partitions)
    window_stats(job.source(INPUT, value_type=Click, timestamp=lambda c: c.ts)).to(OUTPUT)
    return job


async def main() -> None:
    settings = read_settings()
    assert settings.redis.url
    redis = await connect(settings, settings.redis.url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    runtime = RuntimeOptions(batch_size=settings.pagestats.batch_size)
    job = build_job(settings.pagestats.partitions)
    handle = await job.run(redis, mq_options(settings), runtime=runtime)
    print("ready", flush=True)
    await stop.wait()
    await handle.stop()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
