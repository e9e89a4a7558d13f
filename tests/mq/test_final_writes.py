"""Final writes: what a cancelled worker was still writing is awaited by its stop()."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import redis.asyncio as aioredis

from redis_streaming import Consumer, Keys, Message, Producer
from redis_streaming.mq.consume._worker import PartitionWorker
from redis_streaming.mq.consume.leases import Leases
from redis_streaming.mq.topics import TopicStore
from tests.helpers import fast_mq, wait_until


async def test_a_final_write_started_during_a_cancellation_is_awaited_by_stop(
    rs_redis: aioredis.Redis,
    rs_namespace: str,
    rs_server_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``stop(timeout_s)`` waits for the running handler, then cancels the worker. On its way
    out the cancelled worker flushes the acknowledgements it has queued; that write is shielded
    and goes on, and ``stop()`` waits for it, so once ``stop()`` returns the entries handled
    before the cancelled one are acknowledged (the cancelled one stays pending, for the next
    owner). Nobody waited for it before: ``stop()`` returned while the XACK was still on its
    way, and its outcome was lost with the task.

    CLIENT PAUSE WRITE holds the final XACK past the stop's timeout and its second cancel."""
    options = fast_mq(rs_namespace, ack_interval_ms=60_000)  # acks wait for the end of the batch
    keys = Keys(rs_namespace)
    await TopicStore(rs_redis, options).create("f", 1)
    stream = keys.stream("f", 0)
    producer = Producer(rs_redis, options)
    first = (await producer.send("f", "one")).message_id
    second = (await producer.send("f", "two")).message_id
    stuck = asyncio.Event()

    async def handle(m: Message) -> None:
        if m.payload == "two":
            stuck.set()
            await asyncio.Event().wait()  # until cancelled

    sub = Consumer(rs_redis, options, consumer_id="owner").subscribe("f", handle, group="g")
    leases = Leases(rs_redis, keys, "f", "g", "owner", options.lease_ttl_s)
    assert await leases.acquire([0]) == {0}
    worker = PartitionWorker(rs_redis, options, sub, 0, "owner", leases)
    admin = aioredis.Redis.from_url(rs_server_url)
    try:
        worker.start()
        await wait_until(stuck.is_set, 10, "the second handler to run")
        # "one" is handled; its XACK is queued until the batch ends, which it does not.
        assert (await rs_redis.xpending(stream, "g"))["pending"] == 2
        await admin.execute_command("CLIENT", "PAUSE", 2000, "WRITE")
        with caplog.at_level(logging.WARNING):
            await worker.stop(0.2)
        assert "handler still running after 0.2s; cancelling it" in caplog.text
        pending: Any = await rs_redis.xpending_range(stream, "g", "-", "+", 10)  # a read
        assert [p["message_id"].decode() for p in pending] == [second], (
            f"stop() returned before the final XACK of {first} was written"
        )
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await admin.aclose()
        await worker.stop(0)
