"""The ``cdc`` scenario of ``benchmarks/runtime.py`` (its docstring says what it measures):
PostgreSQL changes per second into a topic by a ``SourceRunner`` with ``PostgresCdcSource``,
against a raw peek-and-XADD loop over a second replication slot, in the same run."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import redis.asyncio as aioredis

from redis_streaming import MQOptions
from redis_streaming.cdc import PostgresCdcSource
from redis_streaming.mq.topics import TopicStore
from redis_streaming.source import SourceRunner
from redis_streaming.testing.postgres import PostgresServer

TABLE = "items"
TOPIC = f"pg.public.{TABLE}"
RAW_SLOT = "bench_raw"
ROWS = 10_000  # the table's rows (the snapshot); the updates cycle over them
POLL_S = 0.005
_PEEK = (
    "SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes(%s, NULL, %s, "
    "'proto_version', '1', 'publication_names', 'redis_streaming')"
)
_ROW_CHANGES = (b"I", b"U", b"D")  # pgoutput: insert, update, delete (B, R, C: not changes)


class CdcThroughput:
    """The ``cdc`` scenario: a private PostgreSQL server; per round a backlog of N updates
    (transactions of ``--batch`` rows), drained by (f) the framework and (r) the raw loop."""

    def __init__(self, redis: aioredis.Redis, args: Any) -> None:
        self.redis = redis
        self.n = args.changes
        self.tx = args.batch
        self.read = args.read_batch
        self.partitions = args.partitions
        self.options = MQOptions(
            namespace=f"benchcdc{int(time.time())}", default_partitions=args.partitions
        )
        self.server: PostgresServer | None = None
        self.url = ""
        self.in_topic = 0  # entries expected in the topic so far
        self.next_id = 0  # the first row the next backlog updates

    def runner(self) -> SourceRunner:
        source = PostgresCdcSource(self.url, tables=[f"public.{TABLE}"])
        return SourceRunner(
            self.redis, self.options, source, None, "cdc-bench", batch_size=self.read,
            poll_interval_s=0.01,
        )  # fmt: skip

    async def topic_count(self) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for p in range(self.partitions):
            pipe.xlen(f"{self.options.namespace}:stream:{{{TOPIC}:{p}}}")
        return int(sum(await pipe.execute()))

    async def drained(self, runner: SourceRunner) -> None:
        while await self.topic_count() < self.in_topic:
            status = runner.status()
            assert status.state != "failed", status
            assert status.dead_lettered == 0, status
            await asyncio.sleep(POLL_S)

    async def setup(self, db: Any) -> None:
        """The table and its snapshot (a first run of the runner), then the raw slot."""
        await db.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, v int, note text)")
        await db.execute(
            f"INSERT INTO {TABLE} SELECT g, 0, 'row ' || g FROM generate_series(0, %s) g",
            [ROWS - 1],
        )
        await TopicStore(self.redis, self.options).create(TOPIC, self.partitions)
        runner = self.runner()
        runner.start()
        self.in_topic = ROWS
        await self.drained(runner)
        while not (runner.position or "").startswith("1"):  # the snapshot is over
            await asyncio.sleep(POLL_S)
        await runner.stop()
        await db.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [RAW_SLOT])

    async def backlog(self, db: Any) -> None:
        """N updates in transactions of ``tx`` rows (one statement each), committed while
        nothing reads."""
        for _ in range(0, self.n, self.tx):
            first = self.next_id % ROWS
            last = min(first + self.tx, ROWS) - 1
            await db.execute(
                f"UPDATE {TABLE} SET v = v + 1 WHERE id BETWEEN %s AND %s", [first, last]
            )
            self.next_id = last + 1
        self.in_topic += self.n

    async def framework(self) -> tuple[float, float]:
        """Start a runner (it resumes after the stored position) and time it until the topic
        holds every change: changes/s and changes per client CPU-second."""
        runner = self.runner()
        cpu, start = time.process_time(), time.perf_counter()
        runner.start()
        await self.drained(runner)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        await runner.stop()
        assert await self.topic_count() == self.in_topic  # none twice
        return self.n / elapsed, self.n / cpu

    async def raw(self, db: Any, r: int) -> tuple[float, float]:
        """Peek ``read`` changes at a time from the raw slot, XADD each row change's message
        (not decoded) in one pipeline, advance the slot past the last message."""
        stream = f"bench-cdc-raw{r}"
        done = 0
        cpu, start = time.process_time(), time.perf_counter()
        while done < self.n:
            cur = await db.execute(_PEEK, [RAW_SLOT, self.read])
            rows = await cur.fetchall()
            pipe = self.redis.pipeline(transaction=False)
            for lsn, data in rows:
                data = bytes(data)
                if data[:1] in _ROW_CHANGES:
                    pipe.xadd(stream, {"lsn": lsn, "data": data})
                    done += 1
            await pipe.execute()
            if rows:
                cur = await db.execute(
                    "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", [RAW_SLOT, rows[-1][0]]
                )
                await cur.fetchall()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert done == self.n, done  # every change once: the slot advanced past each read
        assert await self.redis.xlen(stream) == self.n
        await self.redis.delete(stream)
        return self.n / elapsed, self.n / cpu

    async def run(self, rounds: int, ways: str) -> None:
        import psycopg

        self.server = await asyncio.to_thread(PostgresServer().start)
        self.url = self.server.url
        try:
            async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as db:
                await self.setup(db)
                results: dict[str, list[tuple[float, float]]] = {"f": [], "r": []}
                for r in range(rounds):
                    await self.backlog(db)
                    order = ["f", "r"] if r % 2 == 0 else ["r", "f"]
                    for w in order:
                        results[w].append(await (self.framework() if w == "f" else self.raw(db, r)))
        finally:
            self.server.close()
        self.report(results, rounds)

    def report(self, results: dict[str, list[tuple[float, float]]], rounds: int) -> None:
        print(
            f"cdc: {self.n:,} updates a round committed as a backlog (transactions of {self.tx} "
            f"rows, table of {ROWS:,} rows, snapshot taken before), read {self.read} changes at "
            f"a time, topic of {self.partitions} partitions, {rounds} rounds (median; timed "
            "from start until all are in the topic)"
        )
        labels = {"f": "SourceRunner + PostgresCdcSource", "r": "raw peek + XADD pipeline"}
        med = {w: statistics.median(x[0] for x in rs) for w, rs in results.items()}
        cpu = {w: statistics.median(x[1] for x in rs) for w, rs in results.items()}
        for w, rs in results.items():
            each = " ".join(f"{x[0]:,.0f}" for x in rs)
            print(
                f"    ({w}) {labels[w]:<32} {med[w]:>9,.0f} changes/s ({each}); "
                f"{cpu[w]:,.0f} per client CPU-s"
            )
        print(
            f"    (f)/(r) {med['f'] / med['r']:.2f}; per client CPU-second "
            f"{cpu['f'] / cpu['r']:.2f}"
        )
