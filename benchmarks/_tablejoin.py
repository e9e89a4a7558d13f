"""The ``table-join`` scenario of ``benchmarks/runtime.py`` (its docstring says what it
measures): a stream-table join (``join_table``) against the keyed running sum's job (b), in the
same run."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import redis.asyncio as aioredis

from redis_streaming import Job, JobHandle, MQOptions, Producer, ProducerRecord, RuntimeOptions
from redis_streaming.mq.topics import TopicStore

TABLE = "bench-tj-customers"
STREAM = "bench-tj-orders"
OUTPUT = "bench-tj-out"
POLL_S = 0.005
LABELS = {
    "b": "running sum job (b)",
    "j": "join_table, no outputs",
    "o": "join_table + to()",
}


async def committed(handle: JobHandle, topic: str, n: int) -> None:
    """Wait until the stage of ``handle`` reading ``topic`` has committed ``n`` entries."""
    while True:
        (stage,) = [s for s in handle.status().stages if s.topic == topic]
        if stage.records_in >= n:
            assert stage.dead_lettered == 0, stage
            assert stage.last_error is None, stage
            return
        await asyncio.sleep(POLL_S)


class TableJoin:
    """The ``table-join`` scenario; ``baseline`` is the keyed-running-sum scenario, whose job
    (b) runs in the same rounds."""

    def __init__(self, redis: aioredis.Redis, args: Any, baseline: Any) -> None:
        self.redis = redis
        self.n = args.entries
        self.partitions = args.partitions
        self.batch_size = args.batch_size
        self.table_keys = args.table_keys
        self.baseline = baseline
        self.options = MQOptions(
            namespace=f"benchtj{int(time.time())}",
            default_partitions=args.partitions,
            batch_size=args.batch_size,
        )
        self.hits = 0

    async def prefill(self) -> None:
        topics = TopicStore(self.redis, self.options)
        for topic in (TABLE, STREAM, OUTPUT):
            await topics.create(topic, self.partitions)
        producer = Producer(self.redis, self.options)
        customers = [
            ProducerRecord({"name": f"customer {i}", "tier": "gold" if i % 3 else "basic"},
                           key=f"c{i}")
            for i in range(self.table_keys)
        ]  # fmt: skip
        for start in range(0, len(customers), 5000):
            await producer.send_many(TABLE, customers[start : start + 5000])
        for start in range(0, self.n, 5000):
            chunk = []
            for i in range(start, min(start + 5000, self.n)):
                key = f"c{(i * 7919) % self.table_keys}"  # every key, scattered
                chunk.append(ProducerRecord({"id": i, "customer": key, "amount": i % 100}, key=key))
            await producer.send_many(STREAM, chunk)

    def build(self, name: str, *, stream: bool, outputs: bool) -> Job:
        job = Job(name, partitions=self.partitions)
        customers = job.table(TABLE, value_type=dict)
        if stream:
            joined = job.source(STREAM, value_type=dict).join_table(
                customers, how="inner", joiner=self.enrich
            )
            if outputs:
                joined.to(OUTPUT)
        return job

    def enrich(self, order: dict[str, Any], customer: dict[str, Any]) -> dict[str, Any]:
        """The joiner: counts the hits (an inner join calls it only with a value)."""
        self.hits += 1
        return {**order, "tier": customer["tier"]}

    async def join(self, r: int, outputs: bool) -> tuple[float, float, float]:
        """Load the table of job ``tj<r>`` (a run of the table alone), then time the join from
        ``job.run()`` until the stream's N entries are committed: entries/s, per client CPU-s,
        and the table's load rate (entries/s)."""
        name = f"tj{'out' if outputs else ''}{r}"
        runtime = RuntimeOptions(batch_size=self.batch_size)
        start = time.perf_counter()
        handle = await self.build(name, stream=False, outputs=False).run(
            self.redis, self.options, runtime=runtime
        )
        await committed(handle, TABLE, self.table_keys)
        load = self.table_keys / (time.perf_counter() - start)
        await handle.stop()
        self.hits = 0
        job = self.build(name, stream=True, outputs=outputs)  # the same stages: s0 the table
        cpu, start = time.process_time(), time.perf_counter()
        handle = await job.run(self.redis, self.options, runtime=runtime)
        await committed(handle, STREAM, self.n)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        status = handle.status()
        await handle.stop()
        assert self.hits >= self.n, f"{self.hits} of {self.n} records found their customer"
        (stage,) = [s for s in status.stages if s.topic == STREAM]
        assert stage.records_out == (self.n if outputs else 0), stage
        return self.n / elapsed, self.n / cpu, load

    async def sums(self, r: int) -> tuple[float, float, float]:
        cpu = time.process_time()
        rate, _ = await self.baseline.job(1000 + r, False)
        return rate, self.n / (time.process_time() - cpu), 0.0

    async def run(self, rounds: int, ways: str) -> None:
        await self.baseline.prefill()
        await self.prefill()
        every = {
            "b": self.sums,
            "j": lambda r: self.join(r, False),
            "o": lambda r: self.join(r, True),
        }
        results: dict[str, list[tuple[float, float, float]]] = {w: [] for w in every}
        names = list(every)
        for r in range(rounds):
            for w in names[r % 3 :] + names[: r % 3]:
                results[w].append(await every[w](r))
        self.report(results, rounds)

    def report(self, results: dict[str, list[tuple[float, float, float]]], rounds: int) -> None:
        print(
            f"table-join: a table of {self.table_keys:,} keys (pre-loaded), {self.n:,} stream "
            f"entries over {self.partitions} partitions (co-partitioned, every lookup a hit), "
            f"batch size {self.batch_size}, {rounds} rounds (median; timed from start until all "
            "committed); baseline: keyed-running-sum's job (b) on its own input"
        )
        med = {w: statistics.median(x[0] for x in rs) for w, rs in results.items()}
        cpu = {w: statistics.median(x[1] for x in rs) for w, rs in results.items()}
        for w, rs in results.items():
            each = " ".join(f"{x[0]:,.0f}" for x in rs)
            print(
                f"    ({w}) {LABELS[w]:<24} {med[w]:>9,.0f} entries/s ({each}); "
                f"{cpu[w]:,.0f} per client CPU-s"
            )
        for w in ("j", "o"):
            print(
                f"    ({w})/(b) {med[w] / med['b']:.2f}; per client CPU-second "
                f"{cpu[w] / cpu['b']:.2f}"
            )
        load = statistics.median(x[2] for x in results["j"] + results["o"])
        print(f"    table load (its own stage, upserts): {load:,.0f} entries/s")
