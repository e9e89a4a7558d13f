"""A job's outputs (``to(topic)``), as the commit appends them (``commit.lua``, packed by
``commit.py``), on a single server and on a 3-master cluster (through the outbox): every output
entry carries exactly the wire fields its record had (binary payloads, non-ASCII text, keys and
event times unchanged), and the target topic's retention (MAXLEN) applies."""

from __future__ import annotations

from typing import Any

import pytest

from redis_streaming import Job, Producer, ProducerRecord
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.topics import TopicStore
from redis_streaming.mq.wire.codec import parse_fields
from tests.helpers import fast_mq, wait_until

pytestmark = pytest.mark.cluster

PAYLOADS: list[Any] = [
    b"\x00\xff\xfe raw bytes \r\n",
    {"text": "grüße, 世界", "n": 2**40},
    "plain text",
    [1, 2.5, None, True],
    b"",
]


def wire(entry: dict[bytes, bytes]) -> tuple[Any, ...]:
    """What a record carries from its entry to an output: payload, content type, key, time."""
    f = parse_fields(entry)
    return (f.raw, f.content_type, f.key or "", f.ts)


async def entries(redis: Any, keys: Keys, topic: str, partitions: int) -> list[dict[bytes, bytes]]:
    found = []
    for p in range(partitions):
        found += [fields for _, fields in await redis.xrange(keys.stream(topic, p))]
    return found


async def test_outputs_carry_exactly_the_wire_fields_of_their_records(
    rs_redis: Any, rs_namespace: str
) -> None:
    options = fast_mq(rs_namespace)
    topics, keys = TopicStore(rs_redis, options), Keys(rs_namespace)
    await topics.create("in", 2)
    await topics.create("out", 2)
    records = [
        ProducerRecord(payload, key=None if i % 4 == 3 else f"k-{i % 3}")
        for i, payload in enumerate(PAYLOADS * 4)
    ]
    await Producer(rs_redis, options).send_many("in", records)
    job = Job("copy")
    job.source("in").to("out")
    handle = await job.run(rs_redis, options)
    try:

        async def all_out() -> bool:
            return len(await entries(rs_redis, keys, "out", 2)) == len(records)

        await wait_until(all_out, what="every record in the output topic")
    finally:
        await handle.stop()
    sent = sorted(wire(e) for e in await entries(rs_redis, keys, "in", 2))
    assert sorted(wire(e) for e in await entries(rs_redis, keys, "out", 2)) == sent


async def test_the_output_topics_retention_trims_it(rs_redis: Any, rs_namespace: str) -> None:
    options = fast_mq(rs_namespace)
    topics, keys = TopicStore(rs_redis, options), Keys(rs_namespace)
    await topics.create("in", 1)
    await topics.create("out", 1, retention_max_len=10)
    await Producer(rs_redis, options).send_many("in", [{"n": n} for n in range(350)])
    job = Job("trimmed")
    job.source("in").to("out")
    handle = await job.run(rs_redis, options)
    try:
        await wait_until(
            lambda: handle.status().stages[0].records_in == 350, what="every entry committed"
        )

        async def last_out() -> bool:
            last = await rs_redis.xrevrange(keys.stream("out", 0), count=1)
            return bool(last) and parse_fields(last[0][1]).raw == b'{"n":349}'

        await wait_until(last_out, what="the last output appended")
    finally:
        await handle.stop()
    # MAXLEN ~ 10 drops whole stream nodes (100 entries each) once 10 are left without them.
    assert await rs_redis.xlen(keys.stream("out", 0)) < 350
