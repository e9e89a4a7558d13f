"""A CDC process for the crash test: ``python -m tests.cdc.cdc_process PG_URL REDIS_URL NS``
captures table ``t`` into ``pg.public.t`` until killed; prints ``ready`` once running."""

from __future__ import annotations

import asyncio
import sys

from redis_streaming.cdc import PostgresCdcSource
from redis_streaming.source import SourceRunner
from redis_streaming.testing import client_from_url
from tests.helpers import fast_mq


async def main(pg_url: str, redis_url: str, namespace: str) -> None:
    redis = client_from_url(redis_url)
    options = fast_mq(namespace, default_partitions=4, lease_ttl_s=1.5, rebalance_interval_s=0.5)
    source = PostgresCdcSource(pg_url, tables=["public.t"])
    runner = SourceRunner(redis, options, source, None, "t-cdc", batch_size=2000)
    runner.start()
    print("ready", flush=True)
    await runner.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
