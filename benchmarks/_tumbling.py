"""The ``tumbling-count`` scenario of ``benchmarks/runtime.py`` (its docstring says what it
measures): a tumbling windowed count, our ``Job`` against Bytewax on the same generated input,
and Redis memory per open (key, window)."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from redis_streaming import Job, MQOptions, Producer, ProducerRecord, RuntimeOptions, agg, windows
from redis_streaming.mq.topics import TopicStore
from redis_streaming.mq.wire.codec import decode_payload, parse_fields

TOPIC = "bench-win-in"
OUTPUT = "bench-win-counts"
MEM_TOPIC = "bench-win-mem"
POLL_S = 0.005
ORIGIN_MS = 1_700_000_000_000  # a whole second: window k is [ORIGIN + k s, ORIGIN + (k+1) s)
WINDOW_MS = 1000
PER_MS = 10  # events per millisecond of event time


def event(i: int, keys: list[str]) -> tuple[str, int]:
    """The ``i``-th generated event: its key (round-robin) and event time (epoch ms)."""
    return keys[i % len(keys)], ORIGIN_MS + i // PER_MS


def bytewax_rate(n: int, keys: list[str]) -> tuple[float, float, int, int]:
    """Bytewax (one worker, ``run_main``) counting the same events in tumbling windows of
    1 s (``count_window``, ``EventClock`` without wait or wall-clock advance,
    ``TumblingWindower``) from a
    ``TestingSource`` (batches of 1000) into a sink that only counts. Returns events/s,
    events per CPU-second, the windows emitted and the sum of their counts."""
    import bytewax.operators as op
    import bytewax.operators.windowing as win
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import DynamicSink, StatelessSinkPartition
    from bytewax.testing import TestingSource, run_main

    seen = [0, 0]

    class Counting(StatelessSinkPartition[Any]):
        def write_batch(self, items: list[Any]) -> None:
            seen[0] += len(items)
            seen[1] += sum(count for _key, (_wid, count) in items)

    class Discard(DynamicSink[Any]):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> Counting:
            return Counting()

    # Event times as aware datetimes, built before the clock starts (Bytewax's own type).
    events = []
    for i in range(n):
        key, ts = event(i, keys)
        events.append({"k": key, "ts": datetime.fromtimestamp(ts / 1000, tz=UTC)})
    flow = Dataflow("tumbling_count")
    stream = op.input("in", flow, TestingSource(events, batch_size=1000))
    # The watermark follows event time only, as ours does (by default Bytewax's also moves with
    # the wall clock: a stall of the process would make the next events late, and dropped).
    frozen = datetime.now(tz=UTC)
    clock = win.EventClock(
        lambda e: e["ts"], wait_for_system_duration=timedelta(0), now_getter=lambda: frozen
    )
    windower = win.TumblingWindower(
        length=timedelta(milliseconds=WINDOW_MS),
        align_to=datetime.fromtimestamp(ORIGIN_MS / 1000, tz=UTC),
    )
    counted = win.count_window("count", stream, clock, windower, lambda e: e["k"])
    op.output("out", counted.down, Discard())
    cpu, start = time.process_time(), time.perf_counter()
    run_main(flow)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return n / elapsed, n / cpu, seen[0], seen[1]


class TumblingCount:
    """The ``tumbling-count`` scenario (see ``benchmarks/runtime.py``)."""

    def __init__(self, redis: aioredis.Redis, args: Any) -> None:
        self.redis = redis
        self.n = args.entries
        self.partitions = args.partitions
        self.batch_size = args.batch_size
        self.options = MQOptions(
            namespace=f"benchwin{int(time.time())}",
            default_partitions=args.partitions,
            batch_size=args.batch_size,
        )
        self.keys = [f"key-{i}" for i in range(args.window_keys)]
        self.mem_windows = args.mem_windows
        self.expected: dict[tuple[str, int], int] = {}

    async def prefill(self) -> None:
        topics = TopicStore(self.redis, self.options)
        for topic in (TOPIC, OUTPUT, MEM_TOPIC):
            await topics.create(topic, self.partitions)
        producer = Producer(self.redis, self.options)
        for start in range(0, self.n, 5000):
            chunk = []
            for i in range(start, min(start + 5000, self.n)):
                key, ts = event(i, self.keys)
                chunk.append(ProducerRecord({"k": key, "ts": ts}, key=key))
                window = (key, ts - (ts - ORIGIN_MS) % WINDOW_MS)
                self.expected[window] = self.expected.get(window, 0) + 1
            await producer.send_many(TOPIC, chunk)

    async def ours(self, r: int) -> tuple[float, float, int]:
        """Our job from ``job.run()`` until all input is committed: events/s, events per
        CPU-second of this process, and the windows it emitted (checked)."""
        name = f"tumble{r}"
        job = Job(name, partitions=self.partitions)
        (
            job.source(TOPIC, value_type=dict, timestamp=lambda v: v["ts"])
            .window(windows.tumbling(WINDOW_MS / 1000), grace=0)
            .aggregate(agg.count())
            .final()
            .to(OUTPUT)
        )
        runtime = RuntimeOptions(batch_size=self.batch_size)
        cpu, start = time.process_time(), time.perf_counter()
        handle = await job.run(self.redis, self.options, runtime=runtime)
        while True:
            status = handle.status()
            if sum(s.records_in for s in status.stages) >= self.n:
                break
            await asyncio.sleep(POLL_S)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        await handle.stop()
        stage = status.stages[0]
        assert stage.dead_lettered == 0, stage
        assert stage.last_error is None, stage
        assert stage.late_records == 0, stage
        emitted = await self.check_outputs(r)
        assert emitted == stage.records_out == stage.windows_closed, (emitted, stage)
        return self.n / elapsed, self.n / cpu, emitted

    async def check_outputs(self, r: int) -> int:
        """The outputs of round ``r`` (after the earlier rounds' on the output topic) hold each
        closed window's exact count; returns how many there are."""
        seen = 0
        for p in range(self.partitions):
            stream = f"{self.options.namespace}:stream:{{{OUTPUT}:{p}}}"
            for _eid, fields in await self.redis.xrange(stream):
                parsed = parse_fields(fields)
                value = decode_payload(parsed.raw, parsed.content_type)
                if self.expected.get((value["key"], value["start"])) != value["value"]:
                    raise AssertionError(f"window {value} differs from the input's count")
                seen += 1
            await self.redis.delete(stream)
        return seen

    async def memory(self) -> tuple[float, float, int]:
        """Bytes per open (key, window): ``mem_windows`` open windows for each key (one event
        each), none closed (the watermark held back by a day of ``max_out_of_orderness``), read
        with ``MEMORY USAGE`` (exact: SAMPLES 0) of the store hashes and the timer ZSETs."""
        name = f"winmem{int(time.time())}"
        producer = Producer(self.redis, self.options)
        records = [
            ProducerRecord({"k": k, "ts": ORIGIN_MS + w * WINDOW_MS}, key=k)
            for w in range(self.mem_windows)
            for k in self.keys
        ]
        for start in range(0, len(records), 5000):
            await producer.send_many(MEM_TOPIC, records[start : start + 5000])
        job = Job(name, partitions=self.partitions)
        (
            job.source(MEM_TOPIC, value_type=dict, timestamp=lambda v: v["ts"])
            .window(windows.tumbling(WINDOW_MS / 1000), max_out_of_orderness=86_400)
            .aggregate(agg.count())
            .final()
        )
        handle = await job.run(self.redis, self.options)
        while sum(s.records_in for s in handle.status().stages) < len(records):
            await asyncio.sleep(POLL_S)
        await handle.stop()
        ns = self.options.namespace
        state = await self.usage(f"{ns}:state:{{*}}:{name}:*")
        timers = await self.usage(f"{ns}:timers:{{*}}:{name}.*")
        pairs = len(records)
        return state / pairs, timers / pairs, pairs

    async def usage(self, match: str) -> int:
        total = 0
        async for key in self.redis.scan_iter(match=match, count=1000):
            total += int(await self.redis.memory_usage(key, samples=0) or 0)
        return total

    async def run(self, rounds: int, ways: str) -> None:
        await self.prefill()
        results: dict[str, list[tuple[float, float, int]]] = {"ours": [], "bytewax": []}
        for r in range(rounds):
            order = ["ours", "bytewax"] if r % 2 == 0 else ["bytewax", "ours"]
            for way in order:
                if way == "ours":
                    results["ours"].append(await self.ours(r))
                else:
                    rate, per_cpu, emitted, total = bytewax_rate(self.n, self.keys)
                    assert total == self.n, (total, self.n)
                    results["bytewax"].append((rate, per_cpu, emitted))
        per_pair, timers, pairs = await self.memory()
        self.report(results, rounds, (per_pair, timers, pairs))

    def report(
        self,
        results: dict[str, list[tuple[float, float, int]]],
        rounds: int,
        mem: tuple[float, float, int],
    ) -> None:
        per_window = self.n / max(len(self.expected), 1)
        print(
            f"tumbling-count: {self.n:,} events, {len(self.keys):,} keys, 1 s windows, "
            f"{PER_MS} events per ms ({per_window:.0f} per (key, window), "
            f"{PER_MS * WINDOW_MS:,} per window over all keys); ours over {self.partitions} "
            f"partitions, batch size {self.batch_size}, exactly-once commits, outputs to a "
            f"topic; {rounds} rounds (median)"
        )
        medians = {w: statistics.median(r[0] for r in rs) for w, rs in results.items()}
        cpu = {w: statistics.median(r[1] for r in rs) for w, rs in results.items()}
        labels = {"ours": "job (window/aggregate/final/to)", "bytewax": "Bytewax 0.21 count_window"}
        for w, rs in results.items():
            each = " ".join(f"{r[0]:,.0f}" for r in rs)
            print(
                f"    {labels[w]:<34} {medians[w]:>9,.0f} events/s ({each}); "
                f"{cpu[w]:,.0f} per CPU-s; {rs[-1][2]:,} windows emitted"
            )
        ratio = medians["ours"] / medians["bytewax"]
        verdict = "ok" if ratio >= 0.7 else "BELOW TARGET"
        goal = ", goal (ahead of Bytewax) reached" if ratio >= 1 else ""
        print(
            f"    ours/Bytewax {ratio:.2f} (target >= 0.7) {verdict}{goal}; per CPU-second "
            f"{cpu['ours'] / cpu['bytewax']:.2f} (ours: client CPU only; Redis runs the commits)"
        )
        state, timers, pairs = mem
        print(
            f"    Redis memory per open (key, window) ({pairs:,} open: {len(self.keys):,} keys x "
            f"{self.mem_windows}): {state + timers:.0f} bytes (state hashes {state:.0f}, "
            f"timers ZSET {timers:.0f})"
        )
