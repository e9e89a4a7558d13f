"""What durability costs: ``Producer.send`` with ``replicas=1`` against ``leader``, same run.

  .venv/bin/python benchmarks/durability.py [--messages N] [--rounds R]

Starts a master and one replica (``redis_streaming.testing.master_and_replica``, loopback) and
sends the same keyed JSON payloads with two producers on one client: ``durability="leader"``
(the master's reply) and ``durability="replicas=1"`` (XADD then ``WAIT 1`` in the same round
trip: the replica has the message when the call returns). (a) ``send`` awaited one at a time;
(b) ``send_many`` in chunks of 100 (one WAIT per chunk). Rounds alternate between the two;
medians are printed, with the ratio replicas=1 / leader. On loopback the WAIT costs the
replica's acknowledgement (a round trip between the servers plus its processing); across a
network, add the network's round trip.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).parent))
from _common import parser as make_parser
from _common import rate
from redis_streaming import MQOptions, Producer, ProducerRecord
from redis_streaming.mq.topics import TopicStore
from redis_streaming.testing import master_and_replica

PARTITIONS = 8


def payload(n: int) -> dict[str, object]:
    return {"id": f"order-{n}", "customer": f"c-{n % 97}", "amount": n * 0.5, "items": [1, 2, 3]}


def line(name: str, durable: list[float], leader: list[float]) -> str:
    d, lead = statistics.median(durable), statistics.median(leader)
    return (
        f"{name:<28} replicas=1 {d:>9,.0f} msg/s   leader {lead:>9,.0f} msg/s   "
        f"ratio {d / lead:.2f}"
    )


async def run(url: str, messages: int, rounds: int) -> None:
    redis = aioredis.Redis.from_url(url)
    options = MQOptions(namespace=f"bench{int(time.time())}", durability_timeout_ms=5000)
    await TopicStore(redis, options).create("bench", PARTITIONS)
    producers = {
        "leader": Producer(redis, options, durability="leader"),
        "replicas": Producer(redis, options, durability="replicas=1"),
    }
    data = [(payload(n), f"c-{n % 97}") for n in range(messages)]
    records = [ProducerRecord(p, key=k) for p, k in data]

    def one_by_one(producer: Producer) -> Callable[[], Awaitable[int]]:
        async def send() -> int:
            for p, k in data:
                await producer.send("bench", p, key=k)
            return messages

        return send

    def chunks(producer: Producer) -> Callable[[], Awaitable[int]]:
        async def send_many() -> int:
            for i in range(0, messages, 100):
                await producer.send_many("bench", records[i : i + 100])
            return messages

        return send_many

    for producer in producers.values():  # warm up connections, caches and the server
        await one_by_one(producer)()
    results: dict[str, list[float]] = {k: [] for k in ("ls", "rs", "lm", "rm")}
    for _ in range(rounds):
        results["ls"].append(await rate(one_by_one(producers["leader"])))
        results["rs"].append(await rate(one_by_one(producers["replicas"])))
        results["lm"].append(await rate(chunks(producers["leader"])))
        results["rm"].append(await rate(chunks(producers["replicas"])))
    print(f"{messages} messages x {rounds} rounds, {PARTITIONS} partitions, master + 1 replica")
    print(line("send (awaited one by one)", results["rs"], results["ls"]))
    print(line("send_many (chunks of 100)", results["rm"], results["lm"]))
    await redis.aclose()


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with master_and_replica() as servers:
        asyncio.run(run(servers.url, args.messages, args.rounds))


if __name__ == "__main__":
    main()
