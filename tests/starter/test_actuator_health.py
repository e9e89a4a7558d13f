"""Health beyond the basics: the ``mq`` component DOWN when coordination fails and for a
listener whose topic is missing (which starts by itself once the topic exists), details hidden
by default, listener errors that never quote the payload, and the time limit against a server
that stopped answering."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from pydantic import BaseModel

from redis_streaming import Admin, Keys, Producer
from redis_streaming.testing import RedisServer
from redis_streaming_starter import (
    Container,
    RedisStreamingApplication,
    Settings,
    listener,
    resolve,
)
from tests.helpers import serving, wait_until

SECRET = "card=4111111111111111 ssn=123-45-6789"


class Order(BaseModel):
    id: str
    amount: int


class Orders:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @listener("orders", group="billing", id="bill")
    async def bill(self, order: Order) -> None:
        self.seen.append(order.id)


class OrdersContainer(Container):
    orders = providers.Singleton(Orders)


def _settings(settings: Settings, *, details: str | None = "always", **mq: Any) -> Settings:
    data = settings.model_dump()
    data["actuator"] = {"expose": ["health", "listeners", "dlq"]}
    if details:
        data["actuator"]["show_details"] = details
    data["mq"].update({"default_partitions": 2, **mq})
    return Settings.model_validate(data)


@asynccontextmanager
async def _running(settings: Settings) -> AsyncIterator[tuple[RedisStreamingApplication, Any]]:
    app = RedisStreamingApplication(settings=settings, container=OrdersContainer)
    async with serving(app.asgi, "http://test/actuator") as http:
        yield app, http


async def _mq(http: httpx.AsyncClient) -> dict[str, Any]:
    return dict((await http.get("/health/mq")).json())


async def test_mq_is_down_while_a_coordination_round_fails(settings: Settings) -> None:
    """The group's membership key turned into a string: every heartbeat fails (WRONGTYPE), so
    the ``mq`` component and readiness are DOWN with the error; once the key is fixed, UP."""
    async with _running(_settings(settings)) as (app, http):
        await wait_until(lambda: _status(http, "/health/mq", 200), 10, "mq UP")
        members = Keys(settings.mq.namespace).members("orders", "billing")
        await app.redis.delete(members)
        await app.redis.set(members, "not a sorted set")

        async def down() -> bool:
            return (await _mq(http))["status"] == "DOWN"

        await wait_until(down, 10, "mq DOWN after a failed round")
        bill = (await _mq(http))["details"]["listeners"]["bill"]
        assert "WRONGTYPE" in bill["lastError"]
        assert (await http.get("/health/readiness")).status_code == 503
        assert (await http.get("/health/redis")).json()["status"] == "UP"  # Redis itself is fine
        await app.redis.delete(members)
        await wait_until(lambda: _status(http, "/health/readiness", 200), 10, "UP again")


async def test_a_listener_of_a_missing_topic_is_down_then_starts_by_itself(
    settings: Settings,
) -> None:
    async with _running(_settings(settings, auto_create_topics=False)) as (app, http):

        async def missing() -> bool:
            mq = await _mq(http)
            error = mq.get("details", {}).get("listeners", {}).get("bill", {}).get("lastError")
            return mq["status"] == "DOWN" and "does not exist" in (error or "")

        await wait_until(missing, 10, "mq DOWN: topic 'orders' does not exist")
        assert (await http.get("/health/readiness")).status_code == 503
        assert await Admin(app.redis, app.settings.mq).list_topics() == []  # not created

        await Admin(app.redis, app.settings.mq).create_topic("orders", 2)
        await wait_until(lambda: _status(http, "/health/mq", 200), 10, "mq UP once it exists")
        producer: Producer = await resolve(app.container.producer)
        await producer.send("orders", Order(id="o-1", amount=1))
        orders: Orders = await resolve(app.container.orders)
        await wait_until(lambda: orders.seen == ["o-1"], 10, "the listener consumes")
        assert (await http.get("/health/readiness")).status_code == 200


async def _status(http: httpx.AsyncClient, path: str, code: int) -> bool:
    return (await http.get(path)).status_code == code


async def test_health_shows_only_the_status_by_default(settings: Settings) -> None:
    """Spring Boot's default (``show_details=never``): components and details (listener
    errors, addresses) are not shown unless configured."""
    async with _running(_settings(settings, details=None)) as (app, http):
        assert app.settings.actuator.show_details == "never"
        health = (await http.get("/health")).json()
        assert health == {"status": "UP", "groups": ["liveness", "readiness"]}
        assert (await http.get("/health/mq")).json() == {"status": "UP"}
        assert (await http.get("/health/redis")).json() == {"status": "UP"}


async def test_a_payload_that_does_not_bind_is_never_quoted(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The payload of a message that is not a valid Order stays out of the listener's
    lastError (health, /listeners), the ERROR log line and the dead letter's error text; the
    dead letter keeps the payload itself."""
    caplog.set_level(logging.INFO)
    async with _running(_settings(settings)) as (app, http):
        producer: Producer = await resolve(app.container.producer)
        await producer.send("orders", SECRET)
        await producer.send("orders", {"id": "o-2", "amount": SECRET})

        async def two_dead() -> bool:
            page = await http.get("/topics/orders/dlq")
            return page.status_code == 200 and len(page.json()["entries"]) == 2

        await wait_until(two_dead, 10, "two dead letters")
        entries = (await http.get("/topics/orders/dlq")).json()["entries"]
        errors = [e["error"] for e in entries]
        last_error = (await _mq(http))["details"]["listeners"]["bill"]["lastError"]
        listener_error = (await http.get("/listeners/bill")).json()["lastError"]
        for text in [*errors, last_error, listener_error, caplog.text]:
            assert "4111" not in text
            assert "123-45" not in text
        assert any("amount: Input should be a valid integer" in e for e in errors)
        assert any("Input should be a valid dictionary" in e for e in errors)
        assert sorted(str(e["payload"]) for e in entries)[0].count("4111") == 1


async def test_a_server_that_stops_answering_is_down_within_the_time_limit(
    settings: Settings, rs_server: RedisServer
) -> None:
    """SIGSTOP the server: INFO would wait for the socket timeout (10 s); the health check's
    time limit (2 s, docs/actuator.md) answers DOWN first. Slack: 1.5 s for a loaded host."""
    data = _settings(settings).model_dump()
    data["redis"]["url"] = rs_server.url
    async with _running(Settings.model_validate(data)) as (app, http):
        assert (await http.get("/health")).status_code == 200
        assert rs_server.process is not None
        os.kill(rs_server.process.pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            response = await http.get("/health/redis")
            took = time.monotonic() - start
            assert response.status_code == 503
            assert "timed out" in response.json()["details"]["error"]
            assert took < app.health.timeout_s + 1.5, f"answered after {took:.1f}s"
        finally:
            os.kill(rs_server.process.pid, signal.SIGCONT)
        await wait_until(lambda: _status(http, "/health", 200), 15, "UP after SIGCONT")
