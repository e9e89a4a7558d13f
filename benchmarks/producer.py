"""Producer throughput against raw redis-py XADD, measured in the same run.

  .venv/bin/python benchmarks/producer.py [--messages N] [--rounds R]

(a) ``Producer.send`` awaited one at a time vs. ``await redis.execute_command("XADD", ...)`` of
the same fields; (b) ``Producer.send_many`` in chunks of 100 vs. a raw pipeline of 100 XADDs.
The raw loops get their fields pre-encoded, so the ratio charges the framework for encoding,
partitioning and checks. Rounds alternate between the two to even out noise; medians are printed.
Starts its own server unless REDIS_URL is set.
"""

from __future__ import annotations

import sys
import time
import zlib
from pathlib import Path

import pydantic_core
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).parent))
from _common import parser as make_parser
from _common import rate, run_with_server, summary
from redis_streaming import Keys, MQOptions, Producer, ProducerRecord
from redis_streaming.mq.topics import TopicStore

PARTITIONS = 8


def payload(n: int) -> dict[str, object]:
    return {"id": f"order-{n}", "customer": f"c-{n % 97}", "amount": n * 0.5, "items": [1, 2, 3]}


async def run(url: str, messages: int, rounds: int) -> None:
    redis = aioredis.Redis.from_url(url)
    options = MQOptions(namespace=f"bench{int(time.time())}")
    await TopicStore(redis, options).create("bench", PARTITIONS)
    producer = Producer(redis, options)
    keys = Keys(options.namespace)
    streams = [keys.stream("raw", p) for p in range(PARTITIONS)]
    data = [(payload(n), f"c-{n % 97}") for n in range(messages)]
    pre = [
        (
            streams[zlib.crc32(k.encode()) % PARTITIONS],
            [
                "payload", pydantic_core.to_json(p), "content_type", "application/json",
                "key", k, "ts", time.time_ns() // 10**6,
            ],
        )
        for p, k in data
    ]  # fmt: skip

    async def fw_send() -> int:
        for p, k in data:
            await producer.send("bench", p, key=k)
        return messages

    async def raw_send() -> int:
        for stream, fields in pre:
            await redis.execute_command("XADD", stream, "*", *fields)
        return messages

    records = [ProducerRecord(p, key=k) for p, k in data]

    async def fw_many() -> int:
        for i in range(0, messages, 100):
            await producer.send_many("bench", records[i : i + 100])
        return messages

    async def raw_many() -> int:
        for i in range(0, messages, 100):
            pipe = redis.pipeline(transaction=False)
            for stream, fields in pre[i : i + 100]:
                pipe.execute_command("XADD", stream, "*", *fields)
            await pipe.execute()
        return messages

    await fw_send()  # warm up connections, caches and the server
    await raw_send()
    results: dict[str, list[float]] = {k: [] for k in ("fs", "rs", "fm", "rm")}
    for _ in range(rounds):
        results["rs"].append(await rate(raw_send))
        results["fs"].append(await rate(fw_send))
        results["rm"].append(await rate(raw_many))
        results["fm"].append(await rate(fw_many))
    print(f"{messages} messages x {rounds} rounds, {PARTITIONS} partitions, keyed JSON payloads")
    print(summary("send (awaited one by one)", results["fs"], results["rs"], 0.8))
    print(summary("send_many (chunks of 100)", results["fm"], results["rm"], 0.7))
    await redis.aclose()


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    run_with_server(lambda url: run(url, args.messages, args.rounds))


if __name__ == "__main__":
    main()
