import zlib
from collections import defaultdict
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import BaseModel

from redis_streaming import (
    ConfigurationError,
    InvalidArgument,
    InvalidName,
    Keys,
    MQOptions,
    PartitionOutOfRange,
    PayloadTooLarge,
    Producer,
    ProducerRecord,
    RedisUnavailable,
    TopicNotFound,
    partition_for_key,
)
from redis_streaming.mq.topics import TopicStore
from redis_streaming.testing import RedisServer


class Order(BaseModel):
    id: str
    amount: float


async def keys_of(redis: aioredis.Redis, namespace: str) -> set[str]:
    return {k.decode() async for k in redis.scan_iter(match=f"{namespace}:*")}


@pytest.mark.cluster
async def test_keyed_messages_land_in_crc32_partition_in_send_order(
    rs_redis: aioredis.Redis, rs_options: MQOptions
) -> None:
    await TopicStore(rs_redis, rs_options).create("orders", 8)
    producer = Producer(rs_redis, rs_options)
    sent: dict[int, list[tuple[str, int]]] = defaultdict(list)
    records = []
    for n in range(10_000):
        key = f"customer-{n % 137}"
        records.append(ProducerRecord({"n": n}, key=key))
        sent[zlib.crc32(key.encode()) % 8].append((key, n))
    half = 5_000
    for record in records[:half]:  # one at a time
        result = await producer.send("orders", record.payload, key=record.key)
        assert result.partition == partition_for_key(record.key or "", 8)
    results = await producer.send_many("orders", records[half:])
    assert [r.partition for r in results] == [
        zlib.crc32((r.key or "").encode()) % 8 for r in records[half:]
    ]

    keys = Keys(rs_options.namespace)
    total = 0
    for p in range(8):
        entries = await rs_redis.xrange(keys.stream("orders", p))
        got = []
        for _, fields in entries:
            assert set(fields) == {b"payload", b"content_type", b"key", b"ts"}
            assert fields[b"content_type"] == b"application/json"
            got.append((fields[b"key"].decode(), int(fields[b"payload"][5:-1])))
        assert got == sent[p]  # per partition, exactly the send order
        total += len(got)
    assert total == 10_000


@pytest.mark.parametrize(
    ("payload", "content_type", "expected_raw"),
    [
        (Order(id="o-1", amount=9.5), b"application/json", b'{"id":"o-1","amount":9.5}'),
        ({"a": 1, "b": [True, None]}, b"application/json", b'{"a":1,"b":[true,null]}'),
        ("plain text ✓", b"text/plain", "plain text ✓".encode()),
        (b"\x00\x01\xfe\xff", b"application/octet-stream", b"\x00\x01\xfe\xff"),
    ],
)
async def test_payload_types_round_trip_with_content_type(
    rs_redis: aioredis.Redis,
    rs_options: MQOptions,
    payload: Any,
    content_type: bytes,
    expected_raw: bytes,
) -> None:
    producer = Producer(rs_redis, rs_options)
    result = await producer.send("t", payload, headers={"traceparent": "00-ab-cd-01"})
    [(entry_id, fields)] = await rs_redis.xrange(Keys(rs_options.namespace).stream("t", 0))
    assert entry_id.decode() == result.message_id
    assert fields[b"payload"] == expected_raw
    assert fields[b"content_type"] == content_type
    assert fields[b"headers"] == b'{"traceparent":"00-ab-cd-01"}'
    assert b"key" not in fields
    assert int(fields[b"ts"]) > 1_700_000_000_000


async def test_auto_create_uses_default_partitions(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = MQOptions(namespace=rs_namespace, default_partitions=3)
    await Producer(rs_redis, options).send("fresh", "x")
    meta = await TopicStore(rs_redis, options).get("fresh")
    assert meta is not None
    assert meta.partitions == 3
    assert await TopicStore(rs_redis, options).names() == ["fresh"]


async def test_keyless_messages_go_round_robin(
    rs_redis: aioredis.Redis, rs_options: MQOptions
) -> None:
    await TopicStore(rs_redis, rs_options).create("rr", 4)
    producer = Producer(rs_redis, rs_options)
    parts = [(await producer.send("rr", i)).partition for i in range(8)]
    start = parts[0]
    assert parts == [(start + i) % 4 for i in range(8)]  # each partition in turn
    many = await producer.send_many("rr", list(range(8)))
    assert [r.partition for r in many] == [(start + 8 + i) % 4 for i in range(8)]  # carries on


async def test_explicit_partition_and_growth_is_picked_up(
    rs_redis: aioredis.Redis, rs_options: MQOptions
) -> None:
    store = TopicStore(rs_redis, rs_options)
    await store.create("grow", 2)
    producer = Producer(rs_redis, rs_options)
    assert (await producer.send("grow", "a", partition=1, key="ignored")).partition == 1
    with pytest.raises(PartitionOutOfRange, match="has 2 partitions"):
        await producer.send("grow", "a", partition=2)
    await rs_redis.hset(Keys(rs_options.namespace).topic("grow"), "partitions", 4)
    assert (await producer.send("grow", "a", partition=3)).partition == 3


async def test_retention_max_len_trims_on_write(
    rs_redis: aioredis.Redis, rs_options: MQOptions
) -> None:
    await TopicStore(rs_redis, rs_options).create("short", 1, retention_max_len=100)
    producer = Producer(rs_redis, rs_options)
    for _ in range(5):
        await producer.send_many("short", [b"x"] * 1000)
    length = await rs_redis.xlen(Keys(rs_options.namespace).stream("short", 0))
    assert 100 <= length < 1000  # approximate trimming: whole radix-tree nodes


async def test_bad_input_raises_before_anything_is_written(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = MQOptions(namespace=rs_namespace, max_payload_bytes=100)
    producer = Producer(rs_redis, options)
    with pytest.raises(InvalidName, match="invalid topic name 'bad topic'"):
        await producer.send("bad topic", "x")
    with pytest.raises(PayloadTooLarge, match="101 bytes, over the limit of 100"):
        await producer.send("t", b"x" * 101)
    with pytest.raises(PayloadTooLarge):
        await producer.send_many("t", [b"ok", b"x" * 101])
    with pytest.raises(ConfigurationError, match="headers map str to str"):
        await producer.send("t", "x", headers={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="key must be a str"):
        await producer.send("t", "x", key=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="delay must be >= 0"):
        await producer.send("t", "x", delay=-1)
    assert await keys_of(rs_redis, rs_namespace) == set()


async def test_argument_errors_are_invalid_arguments_and_still_configuration_errors(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    producer = Producer(rs_redis, MQOptions(namespace=rs_namespace))
    bad: list[dict[str, Any]] = [
        {"headers": {"n": 1}},
        {"key": 5},
        {"partition": "1"},
        {"delay": -1},
        {"payload": object()},
    ]
    for kwargs in bad:
        payload = kwargs.pop("payload", "x")
        with pytest.raises(InvalidArgument) as raised:
            await producer.send("t", payload, **kwargs)
        assert isinstance(raised.value, ConfigurationError)
        assert isinstance(raised.value, ValueError)
    with pytest.raises(InvalidArgument, match="key must be a str"):
        await producer.send_many("t", [ProducerRecord("x", key=5)])  # type: ignore[arg-type]
    assert await keys_of(rs_redis, rs_namespace) == set()


async def test_unknown_topic_with_auto_create_off(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = MQOptions(namespace=rs_namespace, auto_create_topics=False)
    with pytest.raises(TopicNotFound, match="topics create nope"):
        await Producer(rs_redis, options).send("nope", "x")
    with pytest.raises(TopicNotFound):
        await Producer(rs_redis, options).send_many("nope", ["x"])
    assert await keys_of(rs_redis, rs_namespace) == set()


async def test_server_down_raises_redis_unavailable(rs_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(rs_server.url, socket_connect_timeout=1)
    try:
        producer = Producer(client, MQOptions(namespace="down"))
        await producer.send("t", "before")
        rs_server.stop()
        with pytest.raises(RedisUnavailable, match=f"127.0.0.1:{rs_server.port}.*redis.url"):
            await producer.send("t", "during")
        with pytest.raises(RedisUnavailable):
            await producer.send_many("t", ["during"])
        rs_server.start()
        result = await producer.send("t", "after")  # recovers without a new producer
        assert result.message_id
    finally:
        await client.aclose()
