"""A SQL polling source process: ``python -m tests.source.sql_process PG_URL REDIS_URL NS``
copies table ``events`` (by ``id``) into topic ``events`` until killed."""

from __future__ import annotations

import asyncio
import sys

from redis_streaming.source import SourceRunner, SqlPollingSource
from redis_streaming.testing import client_from_url
from tests.helpers import fast_mq


async def main(pg_url: str, redis_url: str, namespace: str) -> None:
    options = fast_mq(namespace, default_partitions=3, lease_ttl_s=1.5, rebalance_interval_s=0.5)
    source = SqlPollingSource(pg_url, table="public.events", column="id", key="account")
    runner = SourceRunner(client_from_url(redis_url), options, source, "events", "events-sql",
                          batch_size=300)  # fmt: skip
    runner.start()
    await runner.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
