"""The dependency-injector container the starter builds everything in."""

from __future__ import annotations

import inspect
from typing import Any

from dependency_injector import containers, providers

from redis_streaming_starter.autoconfigure import mq
from redis_streaming_starter.autoconfigure.redis import embedded_server, redis_client
from redis_streaming_starter.settings import load_settings

__all__ = ["Container", "resolve"]


class Container(containers.DeclarativeContainer):
    """Providers of everything the application uses; subclass it to add your own.

    ``redis`` is a Resource (an async client, closed by ``shutdown_resources``), so providers
    depending on it return awaitables until it is initialised: use :func:`resolve`. Classes
    provided here may carry ``@listener`` methods; they are bound to the provided instance.
    Override ``settings`` (``container.settings.override(providers.Object(s))``) to configure.
    """

    settings = providers.Singleton(load_settings)
    redis_url = providers.Resource(embedded_server, settings)
    redis = providers.Resource(redis_client, settings, redis_url)
    mq_options = providers.Callable(mq.mq_options, settings)
    producer = providers.Singleton(mq.make_producer, redis, settings)
    consumer = providers.Singleton(mq.make_consumer, redis, settings)
    admin = providers.Singleton(mq.make_admin, redis, settings)
    dead_letters = providers.Singleton(mq.make_dead_letters, redis, settings)
    delayed_mover = providers.Singleton(mq.make_delayed_mover, redis, settings)
    housekeeper = providers.Singleton(mq.make_housekeeper, redis, settings)


async def resolve(provider: Any) -> Any:
    """Call a provider and await the result if it is awaitable (async resources)."""
    value = provider()
    if inspect.isawaitable(value):
        value = await value
    return value
