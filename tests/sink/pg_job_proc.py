"""A job process for the Postgres sink's crash test (run as a script, not collected by pytest).

  python -m tests.sink.pg_job_proc   (settings from the environment, as examples.wordcount)

Job ``pgload``: topic ``records`` (``{"id": int}``) -> appended to table ``loaded``
(``record_id``, ``entry_id``, ``pid``: no unique key) of the database at ``PG_URL`` through a
:class:`PostgresSink`. Prints "ready" once it runs; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from examples.wordcount.settings import connect, mq_options, read_settings

from redis_streaming import Job, PostgresSink, RuntimeOptions, SinkRecord

LOADED_DDL = "CREATE TABLE loaded (record_id integer NOT NULL, entry_id text, pid integer)"


def row(rec: SinkRecord) -> dict[str, Any]:
    return {"record_id": rec.value["id"], "entry_id": rec.entry_id, "pid": os.getpid()}


def build_job(url: str) -> tuple[Job, PostgresSink]:
    sink = PostgresSink(url, "loaded", key_columns=(), columns=row)
    job = Job("pgload")
    job.source("records", value_type=dict).sink(sink)
    return job, sink


async def main() -> None:
    settings = read_settings()
    assert settings.redis.url
    redis = await connect(settings, settings.redis.url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    job, sink = build_job(os.environ["PG_URL"])
    runtime = RuntimeOptions(batch_size=settings.wordcount.batch_size)
    handle = await job.run(redis, mq_options(settings), runtime=runtime)
    print("ready", flush=True)
    await stop.wait()
    await handle.stop()
    await sink.close()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
