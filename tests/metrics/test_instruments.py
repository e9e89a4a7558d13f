import subprocess
import sys
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import redis_streaming
from redis_streaming import (
    Consumer,
    DeadLetter,
    Message,
    MQOptions,
    Producer,
    ProducerRecord,
    RetryPolicy,
)
from redis_streaming.metrics import Metrics, PartitionLabels
from redis_streaming.metrics.batching import DurationSampler, duration_sampler
from redis_streaming.mq.topics import TopicStore
from tests.helpers import wait_until


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Data points by instrument name."""
    data = reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    if data is None:
        return found
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def values(reader: InMemoryMetricReader, name: str) -> dict[frozenset[tuple[str, Any]], int]:
    """Counter values (or histogram counts) by attribute set."""
    return {
        frozenset(p.attributes.items()): getattr(p, "value", None) or p.count
        for p in points(reader).get(name, [])
    }


def attrs(**kw: Any) -> frozenset[tuple[str, Any]]:
    return frozenset(kw.items())


def total(reader: InMemoryMetricReader, name: str) -> int:
    return sum(values(reader, name).values())


async def test_producer_and_consumer_record_counts_labels_and_durations(
    rs_redis: aioredis.Redis, fast_options: MQOptions
) -> None:
    reader = InMemoryMetricReader()
    metrics = Metrics(MeterProvider(metric_readers=[reader]).get_meter("test"))
    await TopicStore(rs_redis, fast_options).create("t", 2)
    producer = Producer(rs_redis, fast_options, metrics=metrics)
    records = [ProducerRecord(f"ok{i}", partition=0) for i in range(4)]
    records += [ProducerRecord("fail-once", partition=0), ProducerRecord("reject", partition=0)]
    records += [ProducerRecord(f"ok{i}", partition=1) for i in range(4)]
    await producer.send_many("t", records)
    await producer.send("t", "ok4", partition=1)
    assert values(reader, "redis_streaming.messages.produced") == {
        attrs(topic="t", partition=0): 6,
        attrs(topic="t", partition=1): 5,
    }

    async def handle(m: Message) -> None:
        if m.payload == "fail-once" and m.attempt == 1:
            raise ValueError("first attempt fails")
        if m.payload == "reject":
            raise DeadLetter("not wanted")

    consumer = Consumer(rs_redis, fast_options, consumer_id="c1", metrics=metrics)
    consumer.subscribe("t", handle, group="g", retry=RetryPolicy(initial_backoff_s=0))
    async with consumer:
        await wait_until(
            lambda: (
                total(reader, "redis_streaming.messages.acked") == 10
                and total(reader, "redis_streaming.messages.dead_lettered") == 1
            ),
            10,
            "acks and the dead letter",
        )

    def labels(partition: int, **extra: Any) -> frozenset[tuple[str, Any]]:
        return attrs(topic="t", partition=partition, group="g", consumer="c1", **extra)

    # the failed entry was delivered twice: first from the stream, then as a retry
    assert values(reader, "redis_streaming.messages.consumed") == {labels(0): 7, labels(1): 5}
    assert values(reader, "redis_streaming.messages.acked") == {labels(0): 5, labels(1): 5}
    assert values(reader, "redis_streaming.messages.retried") == {labels(0): 1}
    assert values(reader, "redis_streaming.messages.dead_lettered") == {
        labels(0, reason="rejected"): 1
    }
    assert values(reader, "redis_streaming.handler.duration") == {
        labels(0, outcome="success"): 5,
        labels(0, outcome="error"): 2,
        labels(1, outcome="success"): 5,
    }
    [duration] = [m for m in _metrics(reader) if m.name == "redis_streaming.handler.duration"]
    assert duration.unit == "s"
    assert all(p.sum >= 0 for p in duration.data.data_points)


def _metrics(reader: InMemoryMetricReader) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]


def test_label_sets_are_built_once_and_reused() -> None:
    labels = PartitionLabels("t", 3, "g", "c")
    assert labels.base == {"topic": "t", "partition": 3, "group": "g", "consumer": "c"}
    assert labels.reason("poison") is labels.reason("poison")
    assert labels.outcome("success") is labels.success
    assert labels.error == {**labels.base, "outcome": "error"}


def test_default_metrics_work_without_a_meter_provider() -> None:
    code = (
        "from redis_streaming.metrics import default_metrics\n"
        "m = default_metrics()\n"
        "assert m is default_metrics()\n"
        "m.produced('t', 0, 3)\n"
        "m.handler_duration(m.labels('t', 0, 'g', 'c').success, 0.1)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_framework_uses_the_opentelemetry_api_only() -> None:
    # (redis-py itself may import the SDK when installed, so check the sources, not sys.modules)
    root = Path(redis_streaming.__file__).parent
    offenders = [p for p in root.rglob("*.py") if "opentelemetry.sdk" in p.read_text()]
    assert offenders == []


def test_handler_durations_are_sampled_above_200_calls_a_second() -> None:
    now = 0.0

    def clock() -> float:
        return now

    sampler = DurationSampler(per_second=200, clock=clock)
    timed = 0
    for _ in range(100):  # 100 calls a second: every one is timed
        now += 0.01
        timed += sampler.sample()
    assert timed == 100
    timed = 0
    for _ in range(100_000):  # 10,000 calls a second for 10 s: about 2,000 timed
        now += 0.0001
        timed += sampler.sample()
    assert 1_900 < timed < 2_500  # (the first 200 calls of the burst are all timed)
    slow = []
    for _ in range(300):  # back to 1 call a second: every call is timed again, once the gap
        now += 1.0  # drawn during the burst (at most 100 calls at this rate) has passed
        slow.append(sampler.sample())
    assert all(slow[100:])
    # one budget per histogram: partition workers recording into one Metrics share it
    metrics = Metrics(MeterProvider().get_meter("test"))
    assert duration_sampler(metrics) is duration_sampler(metrics)
    assert duration_sampler(metrics) is not duration_sampler(Metrics(metrics.meter))
