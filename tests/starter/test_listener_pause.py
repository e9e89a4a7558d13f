"""Pausing a listener through the actuator takes effect at once (newcomer trial m3): once
``POST /actuator/listeners/{id}`` answered, no handler is called, not even for the messages
that the read already in flight returns; after resuming, every message is handled in order.
Through httpx against the real application, its lifespan and a real Redis server."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

import httpx
import redis.asyncio as aioredis
from dependency_injector import providers

from redis_streaming import Keys, Producer
from redis_streaming_starter import (
    Container,
    RedisStreamingApplication,
    Settings,
    listener,
    resolve,
)
from redis_streaming_starter.settings import ActuatorSettings
from tests.helpers import serving, wait_until
from tests.mq.procs import blocked_reads

TOKEN = "pause-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Billing:
    """The listener of the trial: bills every order, in order."""

    def __init__(self) -> None:
        self.billed: list[str] = []

    @listener("orders", group="billing", id="bill")
    async def bill(self, order: str) -> None:
        self.billed.append(order)


class BillingContainer(Container):
    billing = providers.Singleton(Billing)


def _settings(settings: Settings, client_name: str) -> Settings:
    # One partition, and a long read (below half the lease TTL) that is surely in flight when
    # the pause arrives.
    mq = settings.mq.model_copy(
        update={"default_partitions": 1, "lease_ttl_s": 10.0, "block_ms": 4900}
    )
    return settings.model_copy(
        update={
            "actuator": ActuatorSettings.model_validate({"expose": ["*"], "token": TOKEN}),
            "mq": mq,
            "redis": settings.redis.model_copy(update={"client_name": client_name}),
        }
    )


def _client(app: RedisStreamingApplication) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return serving(app.asgi, "http://test/actuator")


async def test_a_paused_listener_calls_no_handler_until_resumed(
    settings: Settings, rs_server_url: str, rs_namespace: str
) -> None:
    name = f"{rs_namespace}-app"
    app = RedisStreamingApplication(settings=_settings(settings, name), container=BillingContainer)
    redis = aioredis.Redis.from_url(rs_server_url)
    stream = Keys(rs_namespace).stream("orders", 0)
    try:
        async with _client(app) as http:
            billing: Billing = await resolve(app.container.billing)
            producer: Producer = await resolve(app.container.producer)

            async def owns() -> bool:
                body = (await http.get("/listeners/bill")).json()
                return bool(body["ownedPartitions"] == [0])

            await wait_until(owns, 10, "the listener to own the partition")
            await producer.send("orders", "o-0")
            await wait_until(lambda: billing.billed == ["o-0"], 10)

            async def reading() -> bool:  # the read after o-0: about 4.9 s to go
                return await blocked_reads(redis, name) == 1

            await wait_until(reading, 5, "the listener's next read to block")
            response = await http.post("/listeners/bill", json={"state": "paused"}, headers=AUTH)
            assert response.status_code == 200, response.text
            assert response.json()["state"] == "paused"
            first = await producer.send("orders", "o-1")
            for i in (2, 3):
                await producer.send("orders", f"o-{i}")

            async def delivered() -> bool:  # the read in flight returned o-1
                [group] = await redis.xinfo_groups(stream)
                return _id(group["last-delivered-id"].decode()) >= _id(first.message_id)

            await wait_until(delivered, 5, "the read in flight to return")
            await asyncio.sleep(0.5)  # a window in which no handler may run (no synchronisation)
            assert billing.billed == ["o-0"]
            paused = (await http.get("/listeners/bill")).json()
            assert paused["state"] == "paused"
            assert paused["inFlight"] == 0
            assert paused["processed"] == 1
            lease = await redis.get(Keys(rs_namespace).lease("orders", 0, "billing"))
            assert lease == paused["consumerId"].encode()  # the lease in Redis, not local state

            response = await http.post("/listeners/bill", json={"state": "running"}, headers=AUTH)
            assert response.status_code == 200, response.text
            assert response.json()["state"] == "running"
            await wait_until(lambda: len(billing.billed) == 4, 10, "the held orders billed")
            assert billing.billed == ["o-0", "o-1", "o-2", "o-3"]

            async def acknowledged() -> bool:
                return int((await redis.xpending(stream, "billing"))["pending"]) == 0

            await wait_until(acknowledged, 5, "pending 0")
    finally:
        await redis.aclose()


def _id(entry_id: str | None) -> tuple[int, int]:
    ms, _, seq = (entry_id or "0-0").partition("-")
    return int(ms), int(seq)
