import asyncio
import logging
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from redis_streaming import (
    Admin,
    ConfigurationError,
    Consumer,
    DeadLetter,
    Keys,
    Message,
    MQOptions,
    Producer,
    ProducerRecord,
    Retry,
    TopicGauges,
)
from redis_streaming.metrics import Metrics
from redis_streaming.mq.topics import TopicStore
from redis_streaming.testing import RedisServer
from tests.helpers import fast_mq, wait_until

LAG = "redis_streaming.partition.lag"
PENDING = "redis_streaming.partition.pending"
LENGTH = "redis_streaming.partition.length"
RETRY = "redis_streaming.retry.scheduled"
DLQ = "redis_streaming.dlq.length"
LEASES = "redis_streaming.leases.owned"
IN_FLIGHT = "redis_streaming.consumer.in_flight"
GAUGES = {LAG, PENDING, LENGTH, RETRY, DLQ, LEASES, IN_FLIGHT}

Series = dict[tuple[Any, ...], int]


def sdk() -> tuple[InMemoryMetricReader, Metrics]:
    reader = InMemoryMetricReader()
    return reader, Metrics(MeterProvider(metric_readers=[reader]).get_meter("test"))


def collect(reader: InMemoryMetricReader) -> dict[str, Series]:
    """Gauge values by name, keyed by the attribute values (topic, partition, group, ...)."""
    found: dict[str, Series] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name not in GAUGES:
                    continue  # the consumer's counters
                series = found.setdefault(metric.name, {})
                for p in metric.data.data_points:
                    series[tuple(p.attributes.values())] = p.value
    return found


def units(reader: InMemoryMetricReader) -> dict[str, str]:
    data = reader.get_metrics_data()
    assert data is not None
    return {m.name: m.unit for rm in data.resource_metrics for sm in rm.scope_metrics
            for m in sm.metrics}  # fmt: skip


async def described(admin: Admin, topic: str) -> dict[str, Series]:
    """What describe_topic says, in the gauges' shape."""
    info = await admin.describe_topic(topic)
    lag = {(topic, p.partition, g.name): g.lag for p in info.partitions for g in p.groups}
    pending = {(topic, p.partition, g.name): g.pending for p in info.partitions for g in p.groups}
    retry = {
        (topic, p.partition, g.name): g.retry_backlog for p in info.partitions for g in p.groups
    }
    length = {(topic, p.partition): p.length for p in info.partitions}
    return {
        LAG: lag,
        PENDING: pending,
        RETRY: retry,
        LENGTH: length,
        DLQ: {(topic,): info.dlq_length},
    }


async def test_gauges_equal_describe_topic_for_a_paused_group(
    rs_redis: aioredis.Redis, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("t", 3)
    reader, metrics = sdk()
    release = asyncio.Event()

    async def handle(m: Message) -> None:
        if m.payload == "block":
            await release.wait()
        elif m.payload == "retry":
            raise Retry(after=60)
        elif m.payload == "dead":
            raise DeadLetter("unwanted")

    consumer = Consumer(rs_redis, fast_options, consumer_id="c1", metrics=metrics)
    sub = consumer.subscribe("t", handle, group="g", batch_size=5)
    gauges = TopicGauges(rs_redis, fast_options, metrics, consumer=consumer)
    producer = Producer(rs_redis, fast_options)
    admin = Admin(rs_redis, fast_options)
    first = [ProducerRecord("ok", partition=p) for p in range(3) for _ in range(3)]
    first += [ProducerRecord("retry", partition=1), ProducerRecord("dead", partition=2)]
    await producer.send_many("t", first)
    await consumer.start()
    try:
        await wait_until(
            lambda: (
                (sub.processed, sub.retried, sub.dead_lettered) == (9, 1, 1)
                and len(sub.owned_partitions) == 3
            ),
            10,
            "the first messages handled",
        )
        # partition 0: a handler blocks, holding its batch pending and the rest unread
        await producer.send_many(
            "t", [ProducerRecord(p, partition=0) for p in ["block"] + ["ok"] * 11]
        )
        await wait_until(lambda: sub.in_flight == 1, 10, "the blocking handler")
        consumer.pause("t", "g")
        await producer.send_many(
            "t", [ProducerRecord("ok", partition=p) for p in (1, 2) for _ in range(12)]
        )

        previous: dict[str, Series] = {}

        async def settled() -> bool:
            nonlocal previous
            assert await gauges.refresh()
            got = {k: v for k, v in collect(reader).items() if k not in (LEASES, IN_FLIGHT)}
            same = got == await described(admin, "t") == previous
            previous = got
            return same

        await wait_until(settled, 10, "gauges equal to describe_topic, twice in a row")
        got = collect(reader)
        assert got[LENGTH] == {("t", 0): 15, ("t", 1): 16, ("t", 2): 16}
        assert got[PENDING][("t", 0, "g")] >= 1  # the blocked entry (and the rest of its batch)
        assert got[LAG][("t", 0, "g")] >= 7
        assert got[LAG][("t", 1, "g")] >= 7
        assert got[LAG][("t", 2, "g")] >= 7
        assert got[RETRY] == {("t", 0, "g"): 0, ("t", 1, "g"): 1, ("t", 2, "g"): 0}
        assert got[DLQ] == {("t",): 1}
        assert got[LEASES] == {("t", "g", "c1"): 3}
        assert got[IN_FLIGHT] == {("t", "g", "c1"): 1}
        assert units(reader)[LEASES] == "{partition}"
        assert {units(reader)[n] for n in (LAG, PENDING, LENGTH, RETRY, DLQ, IN_FLIGHT)} == {
            "{message}"
        }
    finally:
        release.set()
        consumer.resume("t", "g")
        await consumer.stop()
    assert collect(reader)[IN_FLIGHT] == {("t", "g", "c1"): 0}
    await gauges.stop()
    assert set(collect(reader)) == {LEASES, IN_FLIGHT}  # stopped: nothing from Redis any more


async def test_series_of_a_deleted_topic_disappear(
    rs_redis: aioredis.Redis, fast_options: MQOptions
) -> None:
    reader, metrics = sdk()
    admin = Admin(rs_redis, fast_options)
    await admin.create_topic("gone", 2)
    await admin.create_topic("kept", 1)
    handled: list[int] = []

    async def handle(m: Message) -> None:
        handled.append(m.partition)

    consumer = Consumer(rs_redis, fast_options, consumer_id="c1", metrics=metrics)
    consumer.subscribe("gone", handle, group="g")
    gauges = TopicGauges(
        rs_redis, fast_options, metrics, consumer=consumer, topics=lambda: ["kept", "nope"]
    )
    await Producer(rs_redis, fast_options).send_many(
        "gone", [ProducerRecord("x", partition=p) for p in (0, 1, 1)]
    )
    async with consumer:  # stopped after it: a running consumer would recreate the topic
        await wait_until(lambda: len(handled) == 3, 10, "the messages handled")
    assert await gauges.refresh()
    got = collect(reader)
    assert got[LENGTH] == {("gone", 0): 1, ("gone", 1): 2, ("kept", 0): 0}
    assert got[DLQ] == {("gone",): 0, ("kept",): 0}  # "nope" does not exist: no series
    assert set(got[LAG]) == {("gone", 0, "g"), ("gone", 1, "g")}

    await admin.delete_topic("gone")
    assert await gauges.refresh()
    got = collect(reader)
    assert got[LENGTH] == {("kept", 0): 0}
    assert got[DLQ] == {("kept",): 0}
    assert LAG not in got
    assert PENDING not in got
    assert RETRY not in got


async def test_refresh_keeps_the_values_while_redis_is_down_and_recovers(
    rs_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = aioredis.Redis.from_url(rs_server.url, socket_connect_timeout=0.5)
    options = fast_mq("down")
    reader, metrics = sdk()
    gauges = TopicGauges(client, options, metrics, topics=lambda: ["t"], timeout_s=0.5)
    assert gauges.age_s == float("inf")
    try:
        await Producer(client, options).send_many("t", [ProducerRecord("x", partition=0)] * 3)
        assert await gauges.refresh()
        assert gauges.age_s < 1
        assert await gauges.refresh(max_age_s=60)  # young enough: no read
        before = collect(reader)
        assert before[LENGTH][("t", 0)] == 3

        rs_server.stop()
        caplog.set_level(logging.WARNING, "redis_streaming.mq.admin.gauges")
        assert not await gauges.refresh()
        assert not await gauges.refresh()
        assert collect(reader) == before
        warnings = [r for r in caplog.records if r.name == "redis_streaming.mq.admin.gauges"]
        assert len(warnings) == 1
        assert "keeping the previous values" in warnings[0].getMessage()

        rs_server.start()  # empty: no persistence
        assert await gauges.refresh()
        assert LENGTH not in collect(reader)  # the topic is gone with the data
        await Producer(client, options).send("t", "y", partition=0)
        assert await gauges.refresh()
        assert collect(reader)[LENGTH][("t", 0)] == 1

        # a server that does not answer: False after timeout_s, values kept
        pauser = aioredis.Redis.from_url(rs_server.url)
        await pauser.execute_command("CLIENT", "PAUSE", 1500, "ALL")
        start = time.monotonic()
        assert not await gauges.refresh()
        assert time.monotonic() - start < 1.4
        assert collect(reader)[LENGTH][("t", 0)] == 1
        await pauser.aclose()
        await wait_until(gauges.refresh, 10, "the pause to end")
    finally:
        await client.aclose()


async def test_background_refresh_and_lag_that_redis_cannot_tell(
    rs_redis: aioredis.Redis, fast_options: MQOptions
) -> None:
    reader, metrics = sdk()
    await TopicStore(rs_redis, fast_options).create("t", 1)
    stream = Keys(fast_options.namespace).stream("t", 0)
    ids = [f"1000-{n}" for n in range(40)]
    for eid in ids:
        await rs_redis.xadd(stream, {"payload": eid}, id=eid)
    await rs_redis.xgroup_create(stream, "g", id=ids[20])
    await rs_redis.xdel(stream, ids[1], ids[30])  # tombstones: XINFO GROUPS gives no lag
    assert [g["lag"] for g in await rs_redis.xinfo_groups(stream)] == [None]
    consumer = Consumer(rs_redis, fast_options, consumer_id="c1")  # subscribed, never started
    consumer.subscribe("t", lambda m: None, group="g")
    gauges = TopicGauges(rs_redis, fast_options, metrics, consumer=consumer, interval_s=0.05)
    async with gauges:
        await wait_until(lambda: gauges.age_s < 1, 10, "the first background refresh")
        got = collect(reader)
        assert (
            got[LAG]
            == {("t", 0, "g"): 18}
            == (await described(Admin(rs_redis, fast_options), "t"))[LAG]
        )
        assert got[LEASES] == {("t", "g", "c1"): 0}
        refreshed = gauges.age_s
        await wait_until(lambda: gauges.age_s < refreshed, 10, "another refresh")
    assert not gauges.running


async def test_partitions_are_capped_and_gauges_share_one_meter(
    rs_redis: aioredis.Redis, fast_options: MQOptions, caplog: pytest.LogCaptureFixture
) -> None:
    reader, metrics = sdk()
    await TopicStore(rs_redis, fast_options).create("big", 4)
    await TopicStore(rs_redis, fast_options).create("small", 1)
    capped = TopicGauges(
        rs_redis, fast_options, metrics, topics=lambda: ["big", "small"], max_partitions=3
    )
    other = TopicGauges(rs_redis, fast_options, metrics, topics=lambda: ["small", "bad name"])
    for _ in range(2):
        assert await capped.refresh()
        assert await other.refresh()
    assert set(collect(reader)[LENGTH]) == {("big", 0), ("big", 1), ("big", 2), ("small", 0)}
    assert collect(reader)[DLQ] == {("big",): 0, ("small",): 0}
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("max_partitions" in m for m in messages) == 1
    assert sum("bad name" in m for m in messages) == 1
    with pytest.raises(ConfigurationError, match="interval_s"):
        TopicGauges(rs_redis, fast_options, metrics, interval_s=0)
