"""Typed headers: ``Header[str]`` (named like the parameter), ``Annotated[str, Header("x")]``,
``Header[int]`` converting, defaults, ``Headers``; a missing or unconvertible header
dead-letters the message as ``undecodable``, naming the header."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from dependency_injector import providers

from redis_streaming import ConfigurationError, DeadLetters, Message, Producer
from redis_streaming_starter import (
    Container,
    Header,
    Headers,
    RedisStreamingApplication,
    Settings,
    listener,
    resolve,
)
from redis_streaming_starter.binding import bind
from tests.helpers import wait_until


class Tenants:
    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    @listener("orders", group="tenants")
    async def handle(
        self,
        tenant: Header[str],
        order: dict[str, Any],
        region: Annotated[str, Header("x-region")],
        priority: Header[int],
        all_headers: Headers,
        message: Message,
        channel: Header[str] = "web",
    ) -> None:
        self.seen.append((order["id"], tenant, region, priority, channel, all_headers))

    @listener("events", group="tenants")
    def handle_sync(self, body: str, tenant: Header[str | None] = None) -> None:
        self.seen.append((body, tenant))


class TenantsContainer(Container):
    tenants = providers.Singleton(Tenants)


async def test_headers_are_bound_to_their_parameters_and_bad_ones_are_dead_lettered(
    settings: Settings, rs_redis: Any
) -> None:
    app = RedisStreamingApplication(settings=settings, container=TenantsContainer)
    await app.start()
    try:
        producer: Producer = await resolve(app.container.producer)
        full = {"tenant": "acme", "x-region": "eu", "priority": "7", "channel": "api"}
        await producer.send("orders", {"id": "full"}, headers=full)
        minimal = {"tenant": "acme", "x-region": "eu", "priority": "1"}
        await producer.send("orders", {"id": "defaulted"}, headers=minimal)
        await producer.send("orders", {"id": "no-region"}, headers={"tenant": "t", "priority": "1"})
        await producer.send("orders", {"id": "bad-priority"}, headers={**minimal, "priority": "hi"})
        await producer.send("events", "ping")
        tenants: Tenants = await resolve(app.container.tenants)
        await wait_until(lambda: len(tenants.seen) == 3, 15, "three messages handled")
        dead_letters = DeadLetters(rs_redis, app.settings.mq)

        async def two_dead() -> bool:
            return len(await dead_letters.list("orders")) == 2

        await wait_until(two_dead, 15, "two dead letters")
    finally:
        await app.stop()
    by_id = {row[0]: row for row in tenants.seen}
    assert by_id["full"] == ("full", "acme", "eu", 7, "api", full)
    assert by_id["defaulted"] == ("defaulted", "acme", "eu", 1, "web", minimal)
    assert by_id["ping"] == ("ping", None)
    entries = await dead_letters.list("orders")
    assert {e.reason for e in entries} == {"undecodable"}
    errors = {json.loads(e.payload)["id"]: e.error for e in entries}
    assert "Tenants.handle: the message has no header 'x-region'" in errors["no-region"]
    assert "parameter 'region'" in errors["no-region"]
    assert "header 'priority' is not a valid int" in errors["bad-priority"]


class NotAType:
    pass


def test_a_header_type_pydantic_cannot_validate_is_an_error_at_startup() -> None:
    async def handle(body: str, odd: Header[NotAType]) -> None: ...  # type: ignore[valid-type]

    with pytest.raises(ConfigurationError, match="cannot bind header 'odd'"):
        bind(handle, Container(), "listener handle")
