"""Consumer throughput and latency against a raw redis-py loop, measured in the same run.

  .venv/bin/python benchmarks/consumer.py [--messages N] [--rounds R] [--memory M] [--metrics]

(a) Throughput on one partition: a pre-filled stream is drained by (raw) XREADGROUP COUNT 100
    plus one XACK per batch, and by a ``Consumer`` with a no-op async handler (a fresh group
    each round, so both read the same entries). Timed from the first entry handled to the last.
(b) End-to-end latency at about 500 msg/s: send time to handler start, p50 and p99, for a raw
    blocking XREADGROUP loop and for the ``Consumer``.
(c) With --memory M: RSS growth of this process while the Consumer handles M messages (fed in
    chunks so the backlog stays bounded), measured after a 50,000-message warm-up.
(d) With --metrics: the drain of (a) with metrics off (no SDK: the default no-op meter) and on
    (an SDK MeterProvider with a PrometheusMetricReader on its own CollectorRegistry, the
    starter's process metrics, TopicGauges refreshing every second, and a scrape of the registry
    every second in a worker thread, as an HTTP endpoint would), in alternating order, round by
    round. Prints the on/off ratio of
    the medians (target >= 0.9) of the throughput and of the messages per CPU-second of this
    process (less disturbed by other load on the machine). Only (d) runs with --metrics.
Starts its own server unless REDIS_URL is set.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).parent))
from _common import server_url, summary
from redis_streaming import Consumer, Keys, Message, MQOptions, Producer, TopicGauges
from redis_streaming.metrics import Metrics
from redis_streaming.mq.topics import TopicStore

TOPIC = "bench"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def raw_drain(redis: aioredis.Redis, stream: str, group: str, n: int) -> float:
    await redis.xgroup_create(stream, group, id="0", mkstream=True)
    done, first = 0, 0.0
    while done < n:
        reply = await redis.xreadgroup(group, "raw", {stream: ">"}, count=100, block=1000)
        if not reply:
            continue
        entries = reply[0][1]
        if not first:
            first = time.perf_counter()
        await redis.xack(stream, group, *[eid for eid, _ in entries])
        done += len(entries)
    return (n - 1) / (time.perf_counter() - first)


async def framework_drain(
    redis: aioredis.Redis,
    options: MQOptions,
    group: str,
    n: int,
    metrics: Metrics | None = None,
    scrape: Callable[[], object] | None = None,
    cpu: list[float] | None = None,
) -> float:
    """Drain ``n`` entries with a Consumer; with ``scrape``, also TopicGauges refreshing every
    second on ``metrics`` and ``scrape()`` called in a thread every second. Appends the
    messages per CPU-second of this process (all threads) to ``cpu``."""
    handled = 0
    first = last = first_cpu = last_cpu = 0.0

    async def count(message: Message) -> None:
        nonlocal handled, first, last, first_cpu, last_cpu
        handled += 1
        if handled == 1:
            first, first_cpu = time.perf_counter(), time.process_time()
        if handled == n:
            last, last_cpu = time.perf_counter(), time.process_time()

    consumer = Consumer(redis, options, consumer_id=f"fw-{group}", metrics=metrics)
    consumer.subscribe(TOPIC, count, group=group)
    gauges = None
    scrapes = 0
    if scrape is not None:
        gauges = TopicGauges(redis, options, metrics, consumer=consumer, interval_s=1.0)
        await gauges.start()
    await consumer.start()
    next_scrape = time.perf_counter()  # at once, then every second
    while handled < n:
        await asyncio.sleep(0.01)
        if scrape is not None and time.perf_counter() >= next_scrape:
            await asyncio.to_thread(scrape)
            scrapes += 1
            next_scrape += 1.0
    await consumer.stop()
    if gauges is not None:
        await gauges.stop()
        assert gauges.age_s == float("inf")  # stopped; it did refresh while running
    if cpu is not None:
        cpu.append((n - 1) / (last_cpu - first_cpu))
    return (n - 1) / (last - first)


async def throughput(url: str, messages: int, rounds: int) -> None:
    redis = aioredis.Redis.from_url(url)
    options = MQOptions(namespace=f"benchc{int(time.time())}", default_partitions=1)
    await TopicStore(redis, options).create(TOPIC, 1)
    producer = Producer(redis, options)
    for i in range(0, messages, 1000):
        await producer.send_many(TOPIC, [{"n": n, "pad": "x" * 64} for n in range(i, i + 1000)])
    stream = Keys(options.namespace).stream(TOPIC, 0)
    fw, raw = [], []
    for r in range(rounds):
        raw.append(await raw_drain(redis, stream, f"raw{r}", messages))
        fw.append(await framework_drain(redis, options, f"fw{r}", messages))
    print(f"(a) {messages} pre-filled messages on 1 partition, {rounds} rounds (median)")
    print(summary("consumer, no-op handler", fw, raw, 0.4))
    await redis.aclose()


async def latency(url: str, count: int, rate: float) -> None:
    redis = aioredis.Redis.from_url(url)
    options = MQOptions(namespace=f"benchl{int(time.time())}", default_partitions=1)
    await TopicStore(redis, options).create(TOPIC, 1)
    producer = Producer(redis, options)
    stream = Keys(options.namespace).stream(TOPIC, 0)

    async def send_paced() -> None:
        start = time.perf_counter()
        for i in range(count):
            await producer.send(TOPIC, {"t": time.perf_counter()})
            delay = start + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

    # raw: a blocking XREADGROUP loop on its own connection
    raw_lat: list[float] = []
    await redis.xgroup_create(stream, "raw", id="$", mkstream=True)

    async def raw_reader() -> None:
        import pydantic_core

        while len(raw_lat) < count:
            reply = await redis.xreadgroup("raw", "r", {stream: ">"}, count=100, block=1000)
            now = time.perf_counter()
            for _, entries in reply or []:
                for _, fields in entries:
                    raw_lat.append(now - pydantic_core.from_json(fields[b"payload"])["t"])
                await redis.xack(stream, "raw", *[eid for eid, _ in entries])

    reader = asyncio.create_task(raw_reader())
    await asyncio.sleep(0.2)
    await send_paced()
    await reader

    fw_lat: list[float] = []

    async def handle(message: Message) -> None:
        fw_lat.append(time.perf_counter() - message.payload["t"])

    consumer = Consumer(redis, options)
    sub = consumer.subscribe(TOPIC, handle, group="fw", start="latest")
    await consumer.start()
    while not sub.owned_partitions:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    await send_paced()
    while len(fw_lat) < count:
        await asyncio.sleep(0.05)
    await consumer.stop()

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=1000)[int(q * 10) - 1] * 1000

    print(f"(b) end-to-end latency, {count} messages at {rate:.0f} msg/s")
    for name, lat in (("raw XREADGROUP loop", raw_lat), ("consumer", fw_lat)):
        print(f"    {name:<22} p50 {pct(lat, 50):.2f} ms   p99 {pct(lat, 99):.2f} ms")
    p99 = pct(fw_lat, 99)
    print(f"    consumer p99 {p99:.2f} ms (target <= 2 ms) {'ok' if p99 <= 2 else 'ABOVE TARGET'}")
    await redis.aclose()


async def memory(url: str, total: int) -> None:
    redis = aioredis.Redis.from_url(url)
    options = MQOptions(namespace=f"benchm{int(time.time())}", default_partitions=4)
    await TopicStore(redis, options).create(TOPIC, 4)
    producer = Producer(redis, options)
    handled = 0

    async def handle(message: Message) -> None:
        nonlocal handled
        handled += 1

    consumer = Consumer(redis, options)
    consumer.subscribe(TOPIC, handle, group="mem")
    await consumer.start()
    warmup, sent, baseline = 50_000, 0, 0.0
    target = warmup + total
    while handled < target:
        if sent < target and sent - handled < 20_000:
            await producer.send_many(TOPIC, [{"n": n, "pad": "x" * 64} for n in range(1000)])
            sent += 1000
        else:
            await asyncio.sleep(0.005)
        if not baseline and handled >= warmup:
            baseline = rss_mb()
    grown = rss_mb() - baseline
    await consumer.stop()
    print(f"(c) RSS {baseline:.1f} MB after {warmup} messages, +{grown:.1f} MB after {total} more")
    print(f"    growth {grown:.1f} MB (target < 30 MB) {'ok' if grown < 30 else 'ABOVE TARGET'}")
    await redis.aclose()


async def metrics_overhead(url: str, messages: int, rounds: int) -> None:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry, generate_latest

    from redis_streaming_starter.autoconfigure.process_metrics import ProcessMetrics

    redis = aioredis.Redis.from_url(url)
    options = MQOptions(namespace=f"benchx{int(time.time())}", default_partitions=1)
    await TopicStore(redis, options).create(TOPIC, 1)
    producer = Producer(redis, options)
    for i in range(0, messages, 1000):
        await producer.send_many(TOPIC, [{"n": n, "pad": "x" * 64} for n in range(i, i + 1000)])
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    ProcessMetrics(provider.get_meter("redis_streaming_starter.process"))  # read when scraped
    metrics_on = Metrics(meter=provider.get_meter("redis_streaming"))
    scraped: list[float] = []

    def scrape() -> None:
        start = time.perf_counter()
        generate_latest(registry)
        scraped.append(time.perf_counter() - start)

    off: list[float] = []
    on: list[float] = []
    off_cpu: list[float] = []
    on_cpu: list[float] = []
    for r in range(rounds):
        runs = [("off", off, off_cpu, None, None), ("on", on, on_cpu, metrics_on, scrape)]
        for name, rates, cpu, metrics, scraper in runs if r % 2 == 0 else runs[::-1]:
            rates.append(
                await framework_drain(redis, options, f"{name}{r}", messages, metrics, scraper, cpu)
            )

    def report(what: str, on: list[float], off: list[float]) -> None:
        f, o = statistics.median(on), statistics.median(off)
        paired = statistics.median(a / b for a, b in zip(on, off, strict=True))
        verdict = "ok" if f / o >= 0.9 else "BELOW TARGET"
        print(f"    {what}: off {' '.join(f'{x:,.0f}' for x in off)}")
        print(f"    {what}: on  {' '.join(f'{x:,.0f}' for x in on)}")
        print(
            f"    {what}: median on {f:,.0f} / off {o:,.0f}: ratio {f / o:.2f} (target >= 0.9) "
            f"{verdict}; median of the per-round ratios {paired:.2f}"
        )

    print(
        f"(d) metrics on vs off, {messages} pre-filled messages on 1 partition, {rounds} rounds, "
        f"{len(scraped)} scrapes of {statistics.mean(scraped) * 1000:.1f} ms on average"
    )
    report("msg/s", on, off)
    report("msg per CPU-second of this process", on_cpu, off_cpu)
    provider.shutdown()
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, help="default 50,000")
    parser.add_argument("--rounds", type=int, help="default 3 (9 with --metrics)")
    parser.add_argument("--latency-messages", type=int, default=3000)
    parser.add_argument("--memory", type=int, default=0, help="messages for the RSS check")
    parser.add_argument("--metrics", action="store_true", help="only (d): metrics on vs off")
    args = parser.parse_args()
    url, server = server_url()
    try:
        if args.metrics:
            asyncio.run(metrics_overhead(url, args.messages or 50_000, args.rounds or 9))
            return
        asyncio.run(throughput(url, args.messages or 50_000, args.rounds or 3))
        asyncio.run(latency(url, args.latency_messages, 500.0))
        if args.memory:
            asyncio.run(memory(url, args.memory))
    finally:
        if server is not None:
            server.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
