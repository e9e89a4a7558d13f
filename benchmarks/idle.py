"""What an idle consumer costs, against the least any consumer pays: a raw redis-py loop of one
blocking XREADGROUP per partition, measured in the same run.

  .venv/bin/python benchmarks/idle.py [--partitions 16 64 256] [--seconds S]

For each partition count (over 4 topics, one group), a ``Consumer`` that owns every partition
and receives nothing is left idle for S seconds, then the raw loop (``BLOCK`` = ``mq.block_ms``
on each partition's stream) is. Printed per side: commands Redis ran per second (``INFO stats``,
commands run by scripts included), the CPU Redis used, and the CPU of this process; then the
framework/raw ratio of the commands. The consumer's extra work is its leases and membership
(every ``rebalance_interval_s``), the retry movers (sleeping until a retry is due, looking every
``rebalance_interval_s``) and the delayed-message mover (one round trip per
``mq.delayed_interval_ms`` for all its partitions, one script call per partition). Starts its own
server unless REDIS_URL is set.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).parent))
from _common import parser, run_with_server
from redis_streaming import Consumer, Keys, Message, MQOptions
from redis_streaming.mq.topics import TopicStore

TOPICS = 4


def client(url: str, partitions: int) -> aioredis.Redis:
    """As the starter builds it: a pool that waits for a free connection (blocking reads hold
    one each) rather than raising."""
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=partitions + 50)
    return aioredis.Redis.from_pool(pool)


@dataclass
class Cost:
    commands_s: float
    redis_cpu: float
    process_cpu: float

    def line(self, name: str) -> str:
        return (
            f"    {name:<10} {self.commands_s:>8,.0f} commands/s   Redis {self.redis_cpu:5.1%} "
            f"of a core   this process {self.process_cpu:5.1%} of a core"
        )


async def measure(redis: aioredis.Redis, seconds: float) -> Cost:
    stats0, cpu0 = await redis.info("stats"), await redis.info("cpu")
    use0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    await asyncio.sleep(seconds)
    stats1, cpu1 = await redis.info("stats"), await redis.info("cpu")
    use1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    dt = t1 - t0
    commands = stats1["total_commands_processed"] - stats0["total_commands_processed"] - 2
    redis_cpu = sum(cpu1[k] - cpu0[k] for k in ("used_cpu_user", "used_cpu_sys"))
    own_cpu = (use1.ru_utime - use0.ru_utime) + (use1.ru_stime - use0.ru_stime)
    return Cost(commands / dt, redis_cpu / dt, own_cpu / dt)


async def framework_idle(url: str, namespace: str, partitions: int, seconds: float) -> Cost:
    redis = client(url, partitions)
    options = MQOptions(namespace=namespace)
    consumer = Consumer(redis, options)

    async def handle(message: Message) -> None:
        pass

    for t in range(TOPICS):
        await TopicStore(redis, options).create(f"idle{t}", partitions // TOPICS)
        consumer.subscribe(f"idle{t}", handle, group="g")
    await consumer.start()
    while sum(len(s.owned_partitions) for s in consumer.subscriptions) < partitions:
        await asyncio.sleep(0.1)
    await asyncio.sleep(2 * options.rebalance_interval_s)  # settled: every worker reading
    cost = await measure(redis, seconds)
    await consumer.stop()
    await redis.aclose()
    return cost


async def raw_idle(url: str, namespace: str, partitions: int, seconds: float) -> Cost:
    redis = client(url, partitions)
    block_ms = MQOptions().block_ms
    keys = Keys(namespace)
    streams = [
        keys.stream(f"idle{t}", p) for t in range(TOPICS) for p in range(partitions // TOPICS)
    ]
    for stream in streams:
        await redis.xgroup_create(stream, "raw", id="$", mkstream=True)

    async def loop(stream: str) -> None:
        while True:
            await redis.xreadgroup("raw", "r", {stream: ">"}, count=100, block=block_ms)

    tasks = [asyncio.create_task(loop(s)) for s in streams]
    await asyncio.sleep(1.0)
    cost = await measure(redis, seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await redis.aclose()
    return cost


async def main(url: str, counts: list[int], seconds: float) -> None:
    print(
        f"an idle consumer owning N partitions ({TOPICS} topics, one group), {seconds:.0f} s each"
    )
    for n in counts:
        namespace = f"idle{n}x{int(time.time())}"
        fw = await framework_idle(url, namespace, n, seconds)
        raw = await raw_idle(url, namespace, n, seconds)
        print(f"  {n} partitions")
        print(fw.line("consumer"))
        print(raw.line("raw loop"))
        print(f"    commands framework/raw {fw.commands_s / raw.commands_s:.1f}")


if __name__ == "__main__":
    args = parser(__doc__)
    args.add_argument("--partitions", type=int, nargs="+", default=[16, 64, 256])
    args.add_argument("--seconds", type=float, default=10.0)
    opts = args.parse_args()
    run_with_server(lambda url: main(url, opts.partitions, opts.seconds))
