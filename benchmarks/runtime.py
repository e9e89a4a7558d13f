"""Stream-processing runtime (``Job``) against the plain ``Consumer`` draining the same entries.

  .venv/bin/python benchmarks/runtime.py [--scenario NAME] [--entries N] [--partitions P]
                                         [--keys K] [--batch-size B] [--rounds R]
                                         [--window-keys K] [--mem-windows W]
                                         [--table-keys K] [--changes N] [--batch T]

Scenarios (``--scenario``, default all):

keyed-running-sum
    N entries ``{"k": key, "v": int}`` keyed by ``k``, spread over P partitions with K keys per
    partition, pre-filled once. Each round drains them three ways, in rotating order, each with
    a fresh consumer group / job name so all read the same entries:
    (a) the baseline: a ``Consumer`` whose handler only counts (its acknowledgements travel
        with its next read: one round trip a batch);
    (b) a job: ``source(value_type=dict)`` -> ``stateful_map`` summing ``v`` per key (the
        message key is ``k``: no ``key_by``, no repartition), no outputs;
    (c) the same with ``.to(topic)``: every update is an output entry (exactly-once).
    Each is timed from its start (``consumer.start()`` / ``job.run()``, so lease acquisition is
    included) until all N are handled (a) or committed (b, c: ``records_in`` of the job's
    status, polled every 5 ms). Prints entries/s (median of the rounds), the ratios (b)/(a)
    and (c)/(a) (target >= 0.5, goal 0.7), also per CPU-second of this process (less disturbed
    by other load on the machine), and the commands a batch costs: INFO commandstats
    deltas over the run divided by its batches (the job's status; for the consumer, its
    XREADGROUP calls). Commands run by a Lua script count too (commit.lua's HSET, XACK, ...).
    Round trips a batch ~ XREADGROUP + EVALSHA (commits and lease renewals) + HMGET (the
    state loader's pipeline); the consumer's XACKs ride with its next XREADGROUP.
    The job's sums are checked against the expected ones.

tumbling-count
    A tumbling windowed count against Bytewax (``pip install .[bench]``: bytewax 0.21) on the
    same generated input, in the same run: N events over ``--window-keys`` keys (1,000,
    round-robin), event time advancing 1 ms every 10 events, windows of 1 s (so 10,000 events
    a window, 10 per (key, window)). Ours: the events pre-filled once as ``{"k", "ts"}`` keyed
    by ``k`` over P partitions; a job ``source(value_type=dict, timestamp=ts)`` ->
    ``window(tumbling(1), grace=0)`` -> ``aggregate(agg.count())`` -> ``final()`` ->
    ``to(topic)`` (exactly-once commits), timed from ``job.run()`` until all N are committed
    (the last window of each partition stays open: nothing passes its end); every emitted
    count is checked. Bytewax: one worker (``run_main``, in this process), ``TestingSource``
    (batches of 1000, event times already ``datetime``) -> ``count_window`` (``EventClock``
    without wait, its wall-clock advance frozen, ``TumblingWindower``) -> a sink that only
    counts; it closes every window at the end of input. Prints events/s of both (median of
    the rounds, alternating order), the ratio ours/Bytewax (target >= 0.7, goal > 1), per
    CPU-second of this process too.
    Then Redis memory per open (key, window): ``--mem-windows`` windows open for every key
    (the watermark held back), ``MEMORY USAGE`` of the store hashes and timer ZSETs divided
    by the open (key, window) pairs.

metrics
    The cost of the runtime's metrics: job (c) of keyed-running-sum with metrics off (the
    default no-op meter) and on (an OpenTelemetry SDK ``MeterProvider`` with the Prometheus
    reader, scraped every second in a thread, as the starter's ``/actuator/prometheus``; a fresh
    one per run, as one application process has),
    alternating over at least 6 rounds. Prints the ratio on/off of the median rates (budget:
    the metrics cost at most 5 %, ratio >= 0.95), the median of the per-round ratios and the
    ratio per client CPU-second.

table-join
    A stream-table join against the keyed running sum's job (b), in the same run (rounds in
    rotating order). A table of ``--table-keys`` keys (10,000; ``{"name", "tier"}`` keyed by
    customer id) and N stream entries ``{"id", "customer", "amount"}`` keyed by a customer of
    the table (every key, scattered), both topics with P partitions (co-partitioned). Per round
    and way, a fresh job ``tj<r>``: first its table alone runs until the table's stage has
    committed every key (the table load, also reported), then the job with
    ``source(value_type=dict).join_table(table, how="inner", joiner=...)`` is timed from
    ``job.run()`` until the stream's N entries are committed: (j) no outputs, (o) with
    ``.to(topic)``. Each batch looks its keys up with one pipelined HMGET per table partition.
    The joiner counts its calls: every record must find its customer. Prints entries/s and the
    ratios (j)/(b) and (o)/(b), also per client CPU-second.

cdc
    PostgreSQL changes per second into a topic (``SourceRunner`` + ``PostgresCdcSource``, a
    private ``PostgresServer``): after the runner has taken the snapshot of a 10,000-row table,
    each round commits ``--changes`` updates (50,000) in transactions of ``--batch`` rows (100)
    while nothing reads, then times (f) a runner started on it until the topic holds them all,
    and (r) a raw loop over a second slot: ``pg_logical_slot_peek_binary_changes`` of
    ``--read-batch`` (1,000) changes, one redis-py pipeline ``XADD``-ing each undecoded row
    change, ``pg_replication_slot_advance``. Prints changes/s and the ratio (f)/(r).

Starts its own server unless REDIS_URL is set.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).parent))
import contextlib

from _cdc import CdcThroughput
from _common import parser as make_parser
from _common import run_with_server
from _tablejoin import TableJoin
from _tumbling import TumblingCount
from redis_streaming import (
    Consumer,
    Job,
    Message,
    Metrics,
    MQOptions,
    Producer,
    ProducerRecord,
    RuntimeOptions,
    StateReader,
)
from redis_streaming.mq.producer import partition_for_key
from redis_streaming.mq.topics import TopicStore

TOPIC = "bench-in"
OUTPUT = "bench-sums"
POLL_S = 0.005
# The commands worth showing per batch, in this order (the rest are summed as "other").
LABELS = {
    "a": "consumer, counting handler",
    "b": "job, stateful_map",
    "c": "job, stateful_map + to()",
}
SHOWN = ("xreadgroup", "xack", "evalsha", "hmget", "zmscore", "hset", "zrem", "xadd")


@dataclass
class Run:
    """One timed drain: entries/s and the server's command counts per batch."""

    rate: float
    batches: int
    commands: dict[str, int] = field(default_factory=dict)
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0

    def per_batch(self) -> dict[str, float]:
        return {name: calls / max(self.batches, 1) for name, calls in self.commands.items()}


async def commandstats(redis: aioredis.Redis) -> dict[str, int]:
    """Calls per command since the server started (``INFO commandstats``)."""
    info = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()}


async def server_cpu_s(redis: aioredis.Redis) -> float:
    """CPU seconds the server has used (``INFO cpu``, main and other threads)."""
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measured(redis: aioredis.Redis, drain: Callable[[], Awaitable[tuple[float, int]]]) -> Run:
    """Run ``drain`` (returns entries/s and batches) between two snapshots of the server's
    commandstats and CPU time and of this process's CPU time."""
    before, server_before = await commandstats(redis), await server_cpu_s(redis)
    client_before = time.process_time()
    rate, batches = await drain()
    client = time.process_time() - client_before
    server = await server_cpu_s(redis) - server_before
    after = await commandstats(redis)
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    delta["info"] = delta.get("info", 0) - 2  # the snapshots themselves
    return Run(rate, batches, {k: v for k, v in delta.items() if v > 0}, client, server)


def keys_per_partition(partitions: int, per_partition: int) -> list[str]:
    """``per_partition`` keys hashing to each partition (the producer's partitioner)."""
    chosen: dict[int, list[str]] = {p: [] for p in range(partitions)}
    for i in itertools.count():
        key = f"key-{i}"
        bucket = chosen[partition_for_key(key, partitions)]
        if len(bucket) < per_partition:
            bucket.append(key)
        if all(len(b) == per_partition for b in chosen.values()):
            return [k for b in chosen.values() for k in b]
    raise AssertionError("unreachable")  # pragma: no cover


def add(state: int | None, value: dict[str, Any]) -> tuple[int, int]:
    """The running sum of ``v`` per key; outputs the new sum."""
    total = (state or 0) + value["v"]
    return total, total


class KeyedRunningSum:
    """The ``keyed-running-sum`` scenario (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, args: Any) -> None:
        self.redis = redis
        self.n = args.entries
        self.partitions = args.partitions
        self.batch_size = args.batch_size
        self.options = MQOptions(
            namespace=f"benchrt{int(time.time())}",
            default_partitions=args.partitions,
            batch_size=args.batch_size,
        )
        self.keys = keys_per_partition(args.partitions, args.keys)
        self.expected: dict[str, int] = {}
        self.rounds = 0

    async def prefill(self) -> None:
        topics = TopicStore(self.redis, self.options)
        await topics.create(TOPIC, self.partitions)
        await topics.create(OUTPUT, self.partitions)
        producer = Producer(self.redis, self.options)
        keys = self.keys
        for start in range(0, self.n, 5000):
            chunk = []
            for i in range(start, min(start + 5000, self.n)):
                key = keys[i % len(keys)]
                chunk.append(ProducerRecord({"k": key, "v": i}, key=key))
                self.expected[key] = self.expected.get(key, 0) + i
            await producer.send_many(TOPIC, chunk)

    async def consumer(self, r: int) -> tuple[float, int]:
        handled = 0
        done = asyncio.Event()

        async def count(message: Message) -> None:
            nonlocal handled
            handled += 1
            if handled == self.n:
                done.set()

        consumer = Consumer(self.redis, self.options, consumer_id=f"bench-{r}")
        consumer.subscribe(TOPIC, count, group=f"plain{r}", batch_size=self.batch_size)
        start = time.perf_counter()
        await consumer.start()
        await done.wait()
        elapsed = time.perf_counter() - start
        await consumer.stop()
        return self.n / elapsed, -1  # batches: taken from its XREADGROUP calls

    async def job(
        self, r: int, outputs: bool, metrics: Any = None, prefix: str = "sum"
    ) -> tuple[float, int]:
        name = f"{prefix}{'out' if outputs else ''}{r}"
        job = Job(name, partitions=self.partitions)
        sums = job.source(TOPIC, value_type=dict).stateful_map(add, name="sums")
        if outputs:
            sums.to(OUTPUT)
        runtime = RuntimeOptions(batch_size=self.batch_size)
        start = time.perf_counter()
        handle = await job.run(self.redis, self.options, runtime=runtime, metrics=metrics)
        while True:
            status = handle.status()
            if sum(s.records_in for s in status.stages) >= self.n:
                break
            await asyncio.sleep(POLL_S)
        elapsed = time.perf_counter() - start
        await handle.stop()
        stage = status.stages[0]
        assert stage.dead_lettered == 0, stage
        assert stage.last_error is None, stage
        assert stage.records_out == (self.n if outputs else 0), stage
        got = await StateReader(self.redis, self.options).items(name, "sums")
        assert got == self.expected, "the job's sums differ from the expected ones"
        return self.n / elapsed, stage.batches

    async def run(self, rounds: int, ways: str) -> None:
        await self.prefill()
        every: dict[str, Callable[[int], Awaitable[tuple[float, int]]]] = {
            "a": self.consumer,
            "b": lambda r: self.job(r, False),
            "c": lambda r: self.job(r, True),
        }
        names = [w for w in "abc" if w in ways]
        runs: dict[str, list[Run]] = {w: [] for w in names}
        for r in range(rounds):
            for w in names[r % len(names) :] + names[: r % len(names)]:
                run = await measured(self.redis, lambda w=w, r=r: every[w](r))
                if run.batches < 0:
                    run.batches = run.commands.get("xreadgroup", 0)
                runs[w].append(run)
        self.report(runs, rounds)

    def report(self, runs: dict[str, list[Run]], rounds: int) -> None:
        print(
            f"keyed-running-sum: {self.n:,} entries over {self.partitions} partitions, "
            f"{len(self.keys) // self.partitions} keys each, batch size {self.batch_size}, "
            f"{rounds} rounds (median; timed from start until all committed)"
        )
        medians = {w: statistics.median(r.rate for r in rs) for w, rs in runs.items()}
        per_cpu = {
            w: statistics.median(self.n / r.client_cpu_s for r in rs) for w, rs in runs.items()
        }
        for w, rs in runs.items():
            each = " ".join(f"{r.rate:,.0f}" for r in rs)
            client = per_cpu[w]
            server = statistics.median(r.server_cpu_s for r in rs)
            print(
                f"    ({w}) {LABELS[w]:<28} {medians[w]:>9,.0f} entries/s ({each}); "
                f"{client:,.0f} entries per client CPU-s, server CPU {server:.2f} s"
            )
        for w in ("b", "c"):
            if "a" in medians and w in medians:
                ratio = medians[w] / medians["a"]
                verdict = "ok" if ratio >= 0.5 else "BELOW TARGET"
                goal = ", goal 0.7 reached" if ratio >= 0.7 else ""
                cpu = per_cpu[w] / per_cpu["a"]
                print(
                    f"    ({w})/(a) {ratio:.2f} (target >= 0.5) {verdict}{goal}; per client "
                    f"CPU-second {cpu:.2f} (steadier when other load shares the cores)"
                )
        print("    server commands per batch (last round; calls made by Lua scripts included):")
        for w, rs in runs.items():
            last = rs[-1]
            per = last.per_batch()
            shown = "  ".join(f"{c} {per[c]:.2f}" for c in SHOWN if c in per)
            big = "  ".join(f"{c} {v:.2f}" for c, v in per.items() if c not in SHOWN and v >= 0.5)
            rest = sum(v for c, v in per.items() if c not in SHOWN and v < 0.5)
            # XACK rides with the consumer's next XREADGROUP; the loader's HMGET and ZMSCORE
            # share one pipeline; every EVALSHA (commit, lease renewal) is a round trip.
            trips = per.get("xreadgroup", 0) + per.get("evalsha", 0) + per.get("hmget", 0)
            print(f"    ({w}) {last.batches} batches, ~{trips:.2f} round trips: {shown}")
            print(f"        {big}  other {rest:.2f}")


class MetricsOverhead(KeyedRunningSum):
    """The ``metrics`` scenario: job (c) with metrics off and on (see the module docstring)."""

    async def run(self, rounds: int, ways: str) -> None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from prometheus_client import CollectorRegistry, generate_latest

        await self.prefill()
        scrapes: list[float] = []
        stop = asyncio.Event()

        async def scraper(registry: CollectorRegistry) -> None:  # as Prometheus, every second
            while not stop.is_set():
                start = time.perf_counter()
                await asyncio.to_thread(generate_latest, registry)
                scrapes.append(time.perf_counter() - start)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

        rates: dict[str, list[float]] = {"off": [], "on": []}
        cpu: dict[str, list[float]] = {"off": [], "on": []}
        rounds = max(rounds, 6)
        for r in range(rounds):
            order = ["off", "on"] if r % 2 == 0 else ["on", "off"]
            for way in order:
                # A registry per run, as an application process has one with its jobs (one
                # kept over the rounds would hold every earlier round's job's series).
                registry = CollectorRegistry()
                provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
                metrics = Metrics(meter=provider.get_meter("redis_streaming"))
                task = asyncio.create_task(scraper(registry)) if way == "on" else None
                metrics = metrics if way == "on" else None
                cpu_before = time.process_time()
                rate, _ = await self.job(r, True, metrics, prefix=f"m{way}")
                cpu[way].append(self.n / (time.process_time() - cpu_before))
                rates[way].append(rate)
                if task is not None:
                    stop.set()
                    await task
                    stop.clear()
                provider.shutdown()
        on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
        on_cpu, off_cpu = statistics.median(cpu["on"]), statistics.median(cpu["off"])
        paired = statistics.median(a / b for a, b in zip(rates["on"], rates["off"], strict=True))
        print(
            f"metrics: job (c) {self.n:,} entries, {rounds} rounds alternating, metrics off (the "
            f"no-op meter) vs on (SDK + Prometheus reader, scraped every second: "
            f"{len(scrapes)} scrapes of {statistics.mean(scrapes or [0]) * 1000:.1f} ms)"
        )
        print(f"    off {' '.join(f'{x:,.0f}' for x in rates['off'])} entries/s")
        print(f"    on  {' '.join(f'{x:,.0f}' for x in rates['on'])} entries/s")
        # Judged on the per-round ratios (each round runs off and on back to back, so a load
        # that drifts over the run cancels out) and on CPU time; the ratio of the medians is
        # shown too.
        cpu_ratio = on_cpu / off_cpu
        verdict = "ok" if min(paired, cpu_ratio) >= 0.95 else "ABOVE THE 5 % BUDGET"
        print(
            f"    median of the per-round ratios on/off {paired:.3f}, per client CPU-second "
            f"{cpu_ratio:.3f} (budget: cost <= 5 %) {verdict}; ratio of the medians {on / off:.3f}"
        )


SCENARIOS: dict[str, Any] = {
    "keyed-running-sum": KeyedRunningSum,
    "metrics": MetricsOverhead,
    "tumbling-count": TumblingCount,
    "table-join": lambda redis, args: TableJoin(redis, args, KeyedRunningSum(redis, args)),
    "cdc": CdcThroughput,
}


def main() -> None:
    args = make_parser(__doc__)
    args.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    args.add_argument("--entries", type=int, default=200_000, help="default 200,000")
    args.add_argument("--partitions", type=int, default=4, help="default 4")
    args.add_argument("--keys", type=int, default=10, help="keys per partition (default 10)")
    args.add_argument("--batch-size", type=int, default=100, help="default 100 (both sides)")
    args.add_argument("--rounds", type=int, default=3, help="default 3")
    args.add_argument("--window-keys", type=int, default=1000, help="tumbling-count: keys")
    args.add_argument("--mem-windows", type=int, default=10, help="open windows a key (memory)")
    args.add_argument("--table-keys", type=int, default=10_000, help="table-join: table keys")
    args.add_argument("--changes", type=int, default=50_000, help="cdc: changes a round")
    args.add_argument("--batch", type=int, default=100, help="cdc: rows a transaction")
    args.add_argument("--read-batch", type=int, default=1000, help="cdc: changes a read")
    args.add_argument("--ways", default="abc", help="which of (a) (b) (c) to run (default abc)")
    opts = args.parse_args()

    async def scenarios(url: str) -> None:
        redis = aioredis.Redis.from_url(url)
        try:
            for name in opts.scenario or list(SCENARIOS):
                await SCENARIOS[name](redis, opts).run(opts.rounds, opts.ways)
        finally:
            await redis.aclose()

    run_with_server(scenarios)


if __name__ == "__main__":
    main()
