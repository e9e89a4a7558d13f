"""Throughput with 1% of messages failing once, against the same run without failures.

  .venv/bin/python benchmarks/retry.py [--messages N] [--rounds R]

A pre-filled 1-partition topic is drained by a ``Consumer`` 2 x R times, each with a fresh group
and alternating which goes first: with a no-op handler, and with a handler that raises on the
first attempt of every hundredth message (delayed retry, due at once). Timed until every message
has succeeded. Run-to-run noise on a small VM is large (+-15%), so the ratio is taken of the best
run of each (as ``timeit`` does); medians are printed too. Starts its own server unless
REDIS_URL is set.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).parent))
from _common import parser as make_parser
from _common import run_with_server
from redis_streaming import Consumer, Message, MQOptions, Producer, RetryPolicy
from redis_streaming.mq.topics import TopicStore

TOPIC = "bench"


async def drain(redis: aioredis.Redis, options: MQOptions, group: str, n: int, fail: bool) -> float:
    succeeded = 0
    done = asyncio.Event()

    async def handle(message: Message) -> None:
        nonlocal succeeded
        if fail and message.attempt == 1 and message.payload["n"] % 100 == 0:
            raise RuntimeError("transient")
        succeeded += 1
        if succeeded == n:
            done.set()

    consumer = Consumer(redis, options, consumer_id=f"c-{group}")
    policy = RetryPolicy(initial_backoff_s=0.0, max_backoff_s=0.0, jitter=0.0)
    sub = consumer.subscribe(TOPIC, handle, group=group, retry=policy)
    await consumer.start()
    while not sub.owned_partitions:
        await asyncio.sleep(0.001)
    start = time.perf_counter()
    await done.wait()
    elapsed = time.perf_counter() - start
    await consumer.stop()
    return n / elapsed


async def run(url: str, messages: int, rounds: int) -> None:
    redis = aioredis.Redis.from_url(url)
    options = MQOptions(namespace=f"benchr{int(time.time())}")
    await TopicStore(redis, options).create(TOPIC, 1)
    producer = Producer(redis, options)
    for i in range(0, messages, 1000):
        await producer.send_many(TOPIC, [{"n": n, "pad": "x" * 64} for n in range(i, i + 1000)])
    await drain(redis, options, "warmup", messages, True)
    clean: list[float] = []
    failing: list[float] = []
    for r in range(rounds):  # alternate which goes first, so drift hits both alike
        for fail in (False, True) if r % 2 == 0 else (True, False):
            gc.collect()
            name = f"{'failing' if fail else 'clean'}{r}"
            (failing if fail else clean).append(await drain(redis, options, name, messages, fail))
    best = max(failing) / max(clean)
    print(f"{messages} messages on 1 partition, {rounds} rounds each; 1% fail once")
    print(f"    clean runs   {', '.join(f'{x:,.0f}' for x in clean)} msg/s")
    print(f"    failing runs {', '.join(f'{x:,.0f}' for x in failing)} msg/s")
    print(f"    median ratio {statistics.median(failing) / statistics.median(clean):.2f}")
    verdict = "ok" if best >= 0.9 else "BELOW TARGET"
    print(f"    best-run ratio {best:.2f} (target >= 0.9) {verdict}")
    await redis.aclose()


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    run_with_server(lambda url: run(url, args.messages, args.rounds))


if __name__ == "__main__":
    main()
