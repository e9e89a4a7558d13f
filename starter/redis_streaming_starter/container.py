"""The dependency-injector container the starter builds everything in."""

from __future__ import annotations

import inspect
from typing import Any

from dependency_injector import containers, providers

from redis_streaming_starter.autoconfigure import mq, telemetry
from redis_streaming_starter.autoconfigure import registry as reg
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
    instance_id = providers.Singleton(mq.instance_id, settings)
    metric_reader = providers.Singleton(telemetry.metric_reader, settings)
    meter_provider = providers.Resource(
        telemetry.meter_provider, settings, metric_reader, instance_id
    )
    metrics = providers.Singleton(telemetry.make_metrics, meter_provider)
    tracer_provider = providers.Resource(telemetry.tracer_provider, settings, instance_id)
    tracer = providers.Singleton(telemetry.make_tracer, tracer_provider)
    producer = providers.Singleton(mq.make_producer, redis, settings, metrics, tracer)
    consumer = providers.Singleton(mq.make_consumer, redis, settings, instance_id, metrics, tracer)
    topic_gauges = providers.Singleton(telemetry.make_gauges, redis, settings, metrics, consumer)
    admin = providers.Singleton(mq.make_admin, redis, settings)
    dead_letters = providers.Singleton(mq.make_dead_letters, redis, settings)
    delayed_mover = providers.Singleton(mq.make_delayed_mover, redis, settings)
    housekeeper = providers.Singleton(mq.make_housekeeper, redis, settings)
    registry_options = providers.Singleton(reg.registry_options, settings)
    registry = providers.Singleton(reg.make_registry, redis, registry_options)
    discovery = providers.Singleton(reg.make_discovery, redis, registry_options)
    own_instance = providers.Singleton(reg.own_instance, settings, instance_id)
    registration = providers.Singleton(reg.make_registration, registry, own_instance)
    registry_sweeper = providers.Singleton(reg.make_sweeper, redis, registry_options)
    health_checker = providers.Singleton(reg.make_health_checker, registry, discovery, settings)


async def resolve(provider: Any) -> Any:
    """Call a provider and await the result if it is awaitable (async resources)."""
    value = provider()
    if inspect.isawaitable(value):
        value = await value
    return value
