"""``Admin.browse``: reading a topic without a consumer group (what ``redis-streaming tail``
uses), on a single server and on a Redis Cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from redis_streaming import (
    Admin,
    ConfigurationError,
    Keys,
    MQOptions,
    PartitionOutOfRange,
    Producer,
    TopicNotFound,
)
from tests.helpers import wait_until


async def blocked_in_xread(redis: Any) -> bool:
    return any(c["cmd"] == "xread" and "b" in c["flags"] for c in await redis.client_list())


async def groups(redis: Any, keys: Keys) -> list[Any]:
    return [await redis.xinfo_groups(keys.stream("t", p)) for p in range(2)]


@pytest.mark.cluster
async def test_browse_pages_in_id_order_and_waits_for_new_entries(
    rs_redis: Any, rs_options: MQOptions, rs_backend: str
) -> None:
    admin = Admin(rs_redis, rs_options)
    keys = Keys(rs_options.namespace)
    await admin.create_topic("t", 2)
    # Partition 1 covers twice the time of partition 0 in as many entries.
    for n in range(1, 7):
        await rs_redis.xadd(keys.stream("t", 0), {"payload": f"a{n}"}, id=f"{n}-0")
        await rs_redis.xadd(keys.stream("t", 1), {"payload": f"b{n}"}, id=f"{2 * n}-1")
    assert await groups(rs_redis, keys) == [[], []]

    after = {0: "0-0", 1: "0-0"}
    seen: list[tuple[int, str]] = []
    while batch := await admin.browse("t", after, count=2):
        for m in batch:
            seen.append((m.partition, m.id))
            after[m.partition] = m.id
    order = [(*map(int, i.split("-")), p) for p, i in seen]
    assert order == sorted(order)
    assert len(seen) == 12
    assert (await admin.browse("t", {0: "3-0"}, count=10))[0].payload == b"a4"

    waiting = asyncio.ensure_future(admin.browse("t", after, block_ms=5000))
    if rs_backend == "server":  # blocked in XREAD (a cluster client polls instead)
        await wait_until(lambda: blocked_in_xread(rs_redis), what="a blocked XREAD")
    sent = await Producer(rs_redis, rs_options).send("t", {"n": 1}, key="k", partition=0)
    (message,) = await asyncio.wait_for(waiting, 10)
    assert (message.id, message.payload, message.key, message.group) == (
        sent.message_id, {"n": 1}, "k", None)  # fmt: skip
    assert await admin.browse("t", {0: sent.message_id, 1: after[1]}, block_ms=50) == []
    assert await groups(rs_redis, keys) == [[], []]  # no group was created


async def test_browse_rejects_what_it_cannot_read(rs_redis: Any, rs_options: MQOptions) -> None:
    admin = Admin(rs_redis, rs_options)
    await admin.create_topic("t", 2)
    with pytest.raises(PartitionOutOfRange):
        await admin.browse("t", {2: "0-0"})
    with pytest.raises(ConfigurationError, match="not an entry id"):
        await admin.browse("t", {0: "latest"})
    with pytest.raises(ConfigurationError, match="count"):
        await admin.browse("t", {0: "0-0"}, count=0)
    with pytest.raises(TopicNotFound):
        await admin.browse("nope", {0: "0-0"})
    assert await admin.browse("t", {}) == []
