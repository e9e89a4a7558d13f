"""A zombie owner is fenced: a job process frozen (SIGSTOP) in the middle of a batch past the
lease TTL loses its partition to another process, which processes the batch again; when the
zombie resumes (SIGCONT) and goes to commit that batch, the commit is refused and writes
nothing. Every record is counted once, the frozen batch by the new owner."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
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

ITEMS, KEYS = 60, 4


async def _pending(redis: Any, stream: str, consumer_pid: int) -> list[bytes]:
    """Ids of ``stream``'s entries read but not committed by the process ``consumer_pid``
    (consumer ids are ``<host>-<pid>-<random>``), in the stream's only group."""
    groups = await redis.xinfo_groups(stream)
    assert len(groups) == 1, groups
    group = groups[0]["name"]
    held = await redis.xpending_range(stream, group, min="-", max="+", count=1000)
    return [p["message_id"] for p in held if f"-{consumer_pid}-" in p["consumer"].decode()]


async def _freeze_mid_batch(redis: Any, stream: str, proc: subprocess.Popen[bytes]) -> list[bytes]:
    """SIGSTOP ``proc`` while it holds a batch of ``stream`` it has not committed; the ids."""
    for _ in range(50):
        await wait_until(lambda: _has_pending(redis, stream, proc.pid), 10, "a batch in flight")
        proc.send_signal(signal.SIGSTOP)
        held = await _pending(redis, stream, proc.pid)
        if held:
            return held
        proc.send_signal(signal.SIGCONT)  # it committed just before the stop: again
    raise AssertionError("never froze the process in the middle of a batch")


async def _has_pending(redis: Any, stream: str, pid: int) -> bool:
    return bool(await _pending(redis, stream, pid))


async def test_a_frozen_owner_is_fenced_and_its_batch_is_processed_once_by_the_new_owner(
    rs_redis: Any, rs_server_url: str, rs_namespace: str, procs: list[subprocess.Popen[bytes]]
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
        REDIS_STREAMING_WORDCOUNT__BATCH_SIZE="5",
        REDIS_STREAMING_WORDCOUNT__PARTITIONS="2",
    )
    zombie = await start(procs, env, JOB_PROC)
    await wait_until(lambda: _leased_by(rs_redis, keys, zombie.pid), 10, "the first owner")
    successor = await start(procs, env, JOB_PROC)
    items = [
        ProducerRecord({"k": f"k{n % KEYS}", "n": n}, key=f"k{n % KEYS}") for n in range(ITEMS)
    ]
    await Producer(rs_redis, options).send_many("zin", items)

    stream = keys.stream("zin", 0)
    frozen = await _freeze_mid_batch(rs_redis, stream, zombie)
    frozen_n = {int(_payload(e)["n"]) for e in await _entries(rs_redis, stream, frozen)}
    try:
        # The lease lapses, the successor takes the partition and redoes the frozen batch.
        bound = FAST["mq"]["lease_ttl_s"] + 2 * FAST["mq"]["rebalance_interval_s"] + 10

        async def redone() -> bool:
            outputs = await read_outputs(rs_redis, keys, "zout", 2)
            return frozen_n <= {o["n"] for outs in outputs.values() for o in outs}

        await wait_until(redone, bound, "the frozen batch processed by the new owner")
    finally:
        zombie.send_signal(signal.SIGCONT)
    await wait_outputs(rs_redis, keys, "zout", 2, ITEMS, 30)
    # The zombie finishes its batch in at most 0.5 s and goes to commit it: give a commit that
    # was not refused the time to show as duplicates.
    await asyncio.sleep(1.5)

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


async def _leased_by(redis: Any, keys: Keys, pid: int) -> bool:
    """True when a lease on ``zin``'s partition 0 names the process ``pid``."""
    async for key in redis.scan_iter(match=keys.lease("zin", 0, "*")):
        value = await redis.get(key)
        if value and f"-{pid}-" in value.decode():
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
