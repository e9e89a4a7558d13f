"""A zombie owner is fenced: a job process frozen (SIGSTOP) in the middle of a batch past the
lease TTL loses its partition to another process, which processes the batch again (slowly:
its first batch takes 7.5 s); the zombie resumes (SIGCONT) meanwhile and goes to commit that
batch first, while the entries are still pending: only the fence refuses that commit. Every
record is counted once, the frozen batch by the new owner."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from redis_streaming import Admin, Keys, MQOptions, Producer, ProducerRecord
from redis_streaming.runtime import StateReader
from tests.helpers import FAST, fast_mq, wait_until
from tests.runtime.wordcount_procs import (
    JOB_PROC,
    exactly_once_problems,
    job_env,
    read_outputs,
    start,
    stop,
    wait_outputs,
)

pytestmark = pytest.mark.slow

ITEMS, KEYS, BATCH = 60, 4, 5
ZOMBIE, SUCCESSOR = "z2-zombie", "z1-successor"
MARK_N = 11  # the zombie is stopped while it maps this record: in its third batch


async def _pending(redis: Any, stream: str, consumer: str) -> list[bytes]:
    """Ids of ``stream``'s entries read but not committed by ``consumer``, in the stream's only
    group."""
    groups = await redis.xinfo_groups(stream)
    assert len(groups) == 1, groups
    group = groups[0]["name"]
    held = await redis.xpending_range(stream, group, min="-", max="+", count=1000)
    return [p["message_id"] for p in held if p["consumer"].decode() == consumer]


async def test_a_frozen_owner_is_fenced_and_its_batch_is_processed_once_by_the_new_owner(
    rs_redis: Any,
    rs_server_url: str,
    rs_namespace: str,
    procs: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    options: MQOptions = fast_mq(rs_namespace)
    keys = Keys(rs_namespace)
    admin = Admin(rs_redis, options)
    await admin.create_topic("zin", 1)  # one partition: the frozen process owns all the input
    await admin.create_topic("zout", 2)
    env = job_env(
        rs_server_url,
        rs_namespace,
        SLOW_MS="100",
        REDIS_STREAMING_WORDCOUNT__BATCH_SIZE=str(BATCH),
        REDIS_STREAMING_WORDCOUNT__PARTITIONS="2",
    )
    mark = tmp_path / "mapping"  # the zombie creates it when it starts mapping record MARK_N
    zombie_env = {"CONSUMER_ID": ZOMBIE, "MARK_FILE": str(mark), "MARK_N": str(MARK_N)}
    zombie = await start(procs, {**env, **zombie_env}, JOB_PROC)
    await wait_until(lambda: _leased_by(rs_redis, keys, ZOMBIE), 10, "the first owner")
    items = [
        ProducerRecord({"k": f"k{n % KEYS}", "n": n}, key=f"k{n % KEYS}") for n in range(ITEMS)
    ]
    await Producer(rs_redis, options).send_many("zin", items)

    stream = keys.stream("zin", 0)
    await wait_until(mark.exists, 30, f"the zombie mapping record {MARK_N}")
    zombie.send_signal(signal.SIGSTOP)  # in the middle of the batch: 100 ms per record
    frozen = await _pending(rs_redis, stream, ZOMBIE)
    assert frozen, "the zombie holds a batch it has not committed"
    # The successor's id sorts first: once it has the partition, it keeps it when the zombie
    # comes back (partition i goes to the i-th member in id order).
    successor_env = {
        "CONSUMER_ID": SUCCESSOR,
        "SLOW_FIRST_MS": "1500",
        "SLOW_FIRST_COUNT": str(BATCH),
    }
    successor = await start(procs, {**env, **successor_env}, JOB_PROC)
    frozen_n = {int(_payload(e)["n"]) for e in await _entries(rs_redis, stream, frozen)}
    try:
        # The lease lapses, and the successor takes the partition and claims the frozen batch.
        bound = FAST["mq"]["lease_ttl_s"] + 2 * FAST["mq"]["rebalance_interval_s"] + 5

        async def claimed() -> bool:
            return set(frozen) <= set(await _pending(rs_redis, stream, SUCCESSOR))

        await wait_until(claimed, bound, "the frozen batch claimed by the new owner")
        assert not frozen_n & await _read(rs_redis, keys), "the frozen batch is not done yet"
    finally:
        # The zombie finishes its batch in at most 0.5 s and goes to commit it, while the
        # successor needs 7.5 s for it: the entries are still pending, the fence alone says no.
        zombie.send_signal(signal.SIGCONT)
    await wait_outputs(rs_redis, keys, "zout", 2, ITEMS, 60)
    await asyncio.sleep(1.0)  # time for a late duplicate to show

    outputs = await read_outputs(rs_redis, keys, "zout", 2)
    ns = sorted(o["n"] for outs in outputs.values() for o in outs)
    assert ns == list(range(ITEMS)), "each record is counted exactly once"
    truth = {f"k{k}": ITEMS // KEYS for k in range(KEYS)}
    counts = {k: [o["count"] for o in outs] for k, outs in outputs.items()}
    assert not exactly_once_problems(counts, truth)
    by = {o["n"]: o["by"] for outs in outputs.values() for o in outs}
    assert {by[n] for n in frozen_n} == {successor.pid}, "the new owner redid the frozen batch"
    assert await StateReader(rs_redis, options).items("slowcount", "counts") == truth
    assert await stop(procs) == [0, 0]


async def _read(redis: Any, keys: Keys) -> set[int]:
    """The ``n`` of every record in ``zout``."""
    outputs = await read_outputs(redis, keys, "zout", 2)
    return {o["n"] for outs in outputs.values() for o in outs}


async def _leased_by(redis: Any, keys: Keys, consumer: str) -> bool:
    """True when ``consumer`` holds the lease on ``zin``'s partition 0."""
    async for key in redis.scan_iter(match=keys.lease("zin", 0, "*")):
        if await redis.get(key) == consumer.encode():
            return True
    return False


async def _entries(redis: Any, stream: str, ids: list[bytes]) -> list[dict[bytes, bytes]]:
    out = []
    for entry_id in ids:
        [(_, fields)] = await redis.xrange(stream, min=entry_id, max=entry_id)
        out.append(fields)
    return out


def _payload(fields: dict[bytes, bytes]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(fields[b"payload"])
    return result
