"""Straggler checks: what former owners left is claimed, and their names are deleted safely."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from redis_streaming import Consumer, Keys, Message, MQOptions, Producer
from redis_streaming.mq.consume._consumer_names import delete_consumer_names
from redis_streaming.mq.consume._worker import PartitionWorker
from redis_streaming.mq.consume.leases import Leases
from redis_streaming.mq.topics import TopicStore
from tests.helpers import wait_until

_OURS = ("admin", "former", "writer")  # the test's own connections, by CLIENT SETNAME


async def _blocked(admin: aioredis.Redis, name: str | None = None) -> bool:
    """A client is blocked (in a blocking read, or by CLIENT PAUSE): ours named ``name``, or
    (``name`` None) one of the worker's."""
    for client in await admin.client_list():
        if "b" not in client["flags"]:
            continue
        if client["name"] == name or (name is None and client["name"] not in _OURS):
            return True
    return False


async def _former_reading(
    former: aioredis.Redis, admin: aioredis.Redis, stream: str
) -> asyncio.Task[Any]:
    """The read of consumer "former" of group g (``BLOCK 0``), once it blocks on the server."""
    read = asyncio.create_task(
        former.execute_command(
            "XREADGROUP", "GROUP", "g", "former", "COUNT", 10, "BLOCK", 0, "STREAMS", stream, ">"
        )
    )
    await wait_until(lambda: _blocked(admin, "former"), 5, "the former owner's read to block")
    return read


async def test_an_entry_a_former_owner_reads_while_its_name_is_deleted_stays_and_is_handled(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions, rs_server_url: str
) -> None:
    """The straggler check deletes names of former owners that hold nothing. An entry delivered
    to such a name between the check and the delete (a former owner's read still in flight) must
    stay pending, to be claimed and handled; a separate XINFO CONSUMERS then XGROUP DELCONSUMER
    dropped it with the name.

    CLIENT PAUSE WRITE forces the entry into that window: the check's XINFO CONSUMERS (a read)
    runs, while the XADD and then the check's delete (writes) wait, and run in that order."""
    keys = Keys(rs_namespace)
    await TopicStore(rs_redis, fast_options).create("s", 1)
    stream = keys.stream("s", 0)
    handled: list[str] = []

    async def handle(m: Message) -> None:
        handled.append(m.payload)

    # The owner's partition worker, driven by hand so that its straggler check (which its loop
    # runs every rebalance interval) runs at a known moment.
    sub = Consumer(rs_redis, fast_options, consumer_id="owner").subscribe("s", handle, group="g")
    leases = Leases(rs_redis, keys, "s", "g", "owner", fast_options.lease_ttl_s)
    assert await leases.acquire([0]) == {0}
    worker = PartitionWorker(rs_redis, fast_options, sub, 0, "owner", leases)
    await worker._recover()  # creates the groups, claims what is pending (nothing)

    admin, former, writer = (aioredis.Redis.from_url(rs_server_url, client_name=n) for n in _OURS)
    try:
        # A former owner: its name holds nothing and has been idle for longer than a lease TTL
        # plus block_ms (so the check deletes it), and its read is still blocked on the stream.
        await rs_redis.xgroup_createconsumer(stream, "g", "former")
        read = await _former_reading(former, admin, stream)
        forget_ms = fast_options.lease_ttl_s * 1000 + fast_options.block_ms

        async def former_is_idle() -> bool:
            info = await rs_redis.xinfo_consumers(stream, "g")
            return any(c["name"] == b"former" and c["idle"] > forget_ms + 100 for c in info)

        await wait_until(former_is_idle, 10, "the former owner's name to be idle")
        try:
            await admin.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
            fields = {"payload": "in the window", "content_type": "text/plain"}
            add = asyncio.create_task(writer.xadd(stream, fields))
            await wait_until(lambda: _blocked(admin, "writer"), 5, "the XADD to wait")
            check = asyncio.create_task(worker._claim(takeover=False))
            await wait_until(
                lambda: check.done() or _blocked(admin), 5, "the check to run or to wait"
            )
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
        await check
        entry_id = await add
        # The former owner's blocked read was served the entry between the check and the delete.
        served: Any = await asyncio.wait_for(read, 5)
        assert [eid for eid, _ in served[0][1]] == [entry_id]
        pending = await rs_redis.xpending_range(stream, "g", "-", "+", 10)
        assert [(p["message_id"], p["consumer"]) for p in pending] == [(entry_id, b"former")], (
            "the entry delivered to the former owner between the check and the delete of its "
            "name was dropped from the group's pending entries"
        )

        # The owner's check claims it once it has been idle for a lease TTL, and handles it.
        async def idle_for_a_lease() -> bool:
            info = await rs_redis.xpending_range(stream, "g", "-", "+", 10)
            return info[0]["time_since_delivered"] >= fast_options.lease_ttl_s * 1000

        await wait_until(idle_for_a_lease, 10, "the entry to be idle for a lease TTL")
        assert await leases.acquire([0]) == {0}
        await worker._claim(takeover=False)
        assert handled == ["in the window"]
        assert (await rs_redis.xpending(stream, "g"))["pending"] == 0
    finally:
        for client in (admin, former, writer):
            await client.aclose()


async def test_a_dead_consumers_entries_are_handled_and_its_names_deleted(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    """Names of consumers that are gone (killed, or moved to other partitions) do not pile up:
    the owner deletes a name holding nothing once it has been idle for a lease TTL plus
    block_ms, at its next straggler check (every rebalance interval)."""
    keys = Keys(rs_namespace)
    await TopicStore(rs_redis, fast_options).create("d", 1)
    stream, redeliver = keys.stream("d", 0), keys.redeliver("d", 0, "g")
    for key in (stream, redeliver):
        await rs_redis.xgroup_create(key, "g", id="0", mkstream=True)
    await Producer(rs_redis, fast_options).send("d", "read by the dead")
    # One consumer read the entry and died before acknowledging it; another read nothing.
    await rs_redis.xreadgroup("g", "dead", {stream: ">"}, count=10)
    for key in (stream, redeliver):
        await rs_redis.xgroup_createconsumer(key, "g", "idle")
    got: list[str] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    consumer = Consumer(rs_redis, fast_options, consumer_id="live")
    consumer.subscribe("d", handle, group="g")
    async with consumer:
        await wait_until(lambda: got == ["read by the dead"], 5, "the dead consumer's entry")

        async def dead_names_gone() -> bool:
            for key in (stream, redeliver):
                info = await rs_redis.xinfo_consumers(key, "g")
                # (Redis 7.0 creates a name only when it gets entries: "live" may be absent)
                if {c["name"] for c in info} - {b"live"}:
                    return False
            return True

        # lease TTL + block_ms + two intervals, plus 1 s of slack
        bound = (
            fast_options.lease_ttl_s
            + fast_options.block_ms / 1000
            + 2 * fast_options.rebalance_interval_s
        )
        await wait_until(dead_names_gone, bound + 1, "the dead names to be deleted")
        assert (await rs_redis.xpending(stream, "g"))["pending"] == 0


@pytest.mark.cluster
async def test_delete_consumer_names_deletes_only_idle_names_holding_nothing(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    stream = Keys(rs_namespace).stream("n", 0)
    await rs_redis.xgroup_create(stream, "g", id="0", mkstream=True)
    await rs_redis.xadd(stream, {"payload": "x"})
    await rs_redis.xreadgroup("g", "holder", {stream: ">"}, count=10)  # one entry pending
    for name in ("empty", "other"):
        await rs_redis.xgroup_createconsumer(stream, "g", name)

    async def names() -> set[bytes]:
        return {c["name"] for c in await rs_redis.xinfo_consumers(stream, "g")}

    wanted = ["holder", "empty", "absent"]
    assert await delete_consumer_names(rs_redis, stream, "g", wanted, min_idle_ms=60_000) == 0
    assert await names() == {b"holder", b"empty", b"other"}  # none idle for a minute
    assert await delete_consumer_names(rs_redis, stream, "g", wanted, min_idle_ms=0) == 1
    assert await names() == {b"holder", b"other"}  # not the one holding an entry, nor others
    # no stream or no group: nothing to delete, no error
    assert await delete_consumer_names(rs_redis, stream, "nogroup", ["x"], min_idle_ms=0) == 0
    missing = Keys(rs_namespace).stream("none", 0)
    assert await delete_consumer_names(rs_redis, missing, "g", ["x"], min_idle_ms=0) == 0


async def test_a_read_blocked_when_its_name_is_deleted_gets_the_name_back_with_its_entry(
    rs_redis: aioredis.Redis, rs_namespace: str, rs_server_url: str
) -> None:
    """What the atomic delete relies on (Redis 7.0, Valkey): a read that was blocked when its
    name was deleted and is then served creates the name again, with the entry pending."""
    stream = Keys(rs_namespace).stream("b", 0)
    await rs_redis.xgroup_create(stream, "g", id="0", mkstream=True)
    await rs_redis.xgroup_createconsumer(stream, "g", "former")
    admin, former = (aioredis.Redis.from_url(rs_server_url, client_name=n) for n in _OURS[:2])
    try:
        read = await _former_reading(former, admin, stream)
        assert await delete_consumer_names(rs_redis, stream, "g", ["former"], min_idle_ms=0) == 1
        entry_id = await rs_redis.xadd(stream, {"payload": "late"})
        served: Any = await asyncio.wait_for(read, 5)
        assert [eid for eid, _ in served[0][1]] == [entry_id]
        pending = await rs_redis.xpending_range(stream, "g", "-", "+", 10)
        assert [(p["message_id"], p["consumer"]) for p in pending] == [(entry_id, b"former")]
    finally:
        for client in (admin, former):
            await client.aclose()
