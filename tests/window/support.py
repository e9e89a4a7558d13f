"""What the window tests share: seeded out-of-order input, a keyed one-partition source with
event time from the payload, the aggregation the references compute (count, sum, collect), and
reading window results back."""

from __future__ import annotations

import random
from typing import Any

from redis_streaming import Admin, Job, MQOptions, Producer, ProducerRecord, RuntimeOptions, agg
from redis_streaming.runtime import Stream
from tests.runtime.support import read
from tests.window.reference import Rec, Result

# Small batches cut through the input; the protocol is the same as with the default.
RUNTIME = RuntimeOptions(batch_size=7, retry_backoff_ms=10, forward_interval_ms=20)
T0 = 1_700_000_000_000  # a whole number of seconds (windows align to the epoch)
FAR = 10**9  # a record this much later closes every window


def generate(
    seed: int, n: int, *, step: int, jitter: int, far: int, keys: str = "abc"
) -> list[Rec]:
    """``n`` records on keys ``keys``: times about ``step`` apart, half of them moved back by up
    to ``jitter``, some (8%) by ``far / 2`` to ``far`` (late); then one record of key ``z``
    ``FAR`` later that closes everything."""
    rng = random.Random(seed)
    t = T0 + 10 * far
    out: list[Rec] = []
    for i in range(n):
        t += rng.randint(0, 2 * step)
        ts, roll = t, rng.random()
        if roll < 0.08:
            ts -= rng.randint(far // 2, far)
        elif roll < 0.5:
            ts -= rng.randint(0, jitter)
        out.append({"id": i, "k": rng.choice(keys), "ts": ts, "v": rng.randint(1, 9)})
    out.append(closer(n, t + FAR))
    return out


def closer(i: int, ts: int) -> Rec:
    """A record of its own key ``z`` at ``ts`` (moves the watermark)."""
    return {"id": i, "k": "z", "ts": ts, "v": 0}


async def feed(redis: Any, options: MQOptions, topic: str, records: list[Rec]) -> None:
    """Create ``topic`` (one partition) if needed and append ``records`` keyed by ``k``."""
    await Admin(redis, options).create_topic(topic, 1)  # idempotent
    await send(redis, options, topic, records)


async def send(redis: Any, options: MQOptions, topic: str, records: list[Rec]) -> None:
    """Append ``records`` to ``topic``, keyed by ``k``, in order."""
    messages = [ProducerRecord(r, key=r["k"]) for r in records]
    await Producer(redis, options).send_many(topic, messages)


async def topics(redis: Any, options: MQOptions, *names: str) -> None:
    """Create output topics of one partition (outputs then stay in emit order)."""
    admin = Admin(redis, options)
    for name in names:
        await admin.create_topic(name, 1)


def source(job: Job, topic: str = "in") -> Stream:
    """The keyed source with event time from the payload's ``ts``."""
    return job.source(topic, value_type=dict, timestamp=lambda v: v["ts"])


def aggregation() -> dict[str, Any]:
    """The named aggregators the references compute (``summary``)."""
    return {
        "n": agg.count(),
        "s": agg.sum(lambda v: v["v"]),
        "c": agg.collect(lambda v: v["id"]),
    }


async def results(redis: Any, options: MQOptions, topic: str) -> list[Result]:
    """The window results in ``topic``, in order, as ``(key, start, end, aggregate)``."""
    out = []
    for key, value in await read(redis, options, topic, 1):
        assert key == value["key"]
        out.append((value["key"], value["start"], value["end"], value["value"]))
    return out


async def records(redis: Any, options: MQOptions, topic: str) -> list[Rec]:
    """The records (payloads) in ``topic``, in order."""
    return [value for _, value in await read(redis, options, topic, 1)]
