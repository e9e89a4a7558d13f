"""The dependency-injector container the starter builds everything in."""

from __future__ import annotations

import inspect
from typing import Any

from dependency_injector import containers, providers

from redis_streaming import (
    Admin,
    Consumer,
    DeadLetters,
    DelayedMover,
    Housekeeper,
    Producer,
    TopicGauges,
)
from redis_streaming.registry import (
    Registration,
    RegistrySweeper,
    ServiceDiscovery,
    ServiceRegistry,
)
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
    redis_url = providers.Resource(embedded_server, settings=settings)
    redis = providers.Resource(redis_client, settings=settings, url=redis_url)
    mq_options = providers.Callable(mq.mq_options, settings=settings)
    instance_id = providers.Singleton(mq.instance_id, settings=settings)

    metric_reader = providers.Singleton(telemetry.metric_reader, settings=settings)
    meter_provider = providers.Resource(
        telemetry.meter_provider, settings=settings, reader=metric_reader, instance_id=instance_id
    )
    metrics = providers.Singleton(telemetry.make_metrics, provider=meter_provider)
    tracer_provider = providers.Resource(
        telemetry.tracer_provider, settings=settings, instance_id=instance_id
    )
    tracer = providers.Singleton(telemetry.make_tracer, provider=tracer_provider)

    producer = providers.Singleton(
        Producer, redis=redis, options=settings.provided.mq, metrics=metrics, tracer=tracer
    )
    consumer = providers.Singleton(
        Consumer,
        redis=redis,
        options=settings.provided.mq,
        consumer_id=instance_id,
        metrics=metrics,
        tracer=tracer,
        move_delayed=False,  # delayed_mover moves every topic's delayed messages already
    )
    topic_gauges = providers.Singleton(
        TopicGauges,
        redis=redis,
        options=settings.provided.mq,
        metrics=metrics,
        consumer=consumer,
        interval_s=settings.provided.metrics.gauge_interval_s,
        timeout_s=settings.provided.metrics.gauge_timeout_s,
        max_partitions=settings.provided.metrics.gauge_max_partitions,
    )
    admin = providers.Singleton(Admin, redis=redis, options=settings.provided.mq)
    dead_letters = providers.Singleton(DeadLetters, redis=redis, options=settings.provided.mq)
    delayed_mover = providers.Singleton(DelayedMover, redis=redis, options=settings.provided.mq)
    housekeeper = providers.Singleton(
        Housekeeper,
        redis=redis,
        options=settings.provided.mq,
        interval_s=settings.provided.mq.housekeeping_interval_s,
    )

    registry_options = providers.Singleton(reg.registry_options, settings=settings)
    registry = providers.Singleton(ServiceRegistry, redis=redis, options=registry_options)
    discovery = providers.Singleton(ServiceDiscovery, redis=redis, options=registry_options)
    own_instance = providers.Singleton(reg.own_instance, settings=settings, instance_id=instance_id)
    registration = providers.Singleton(Registration, registry=registry, instance=own_instance)
    registry_sweeper = providers.Singleton(RegistrySweeper, redis=redis, options=registry_options)
    health_checker = providers.Singleton(
        reg.make_health_checker, registry=registry, discovery=discovery, settings=settings
    )


async def resolve(provider: Any) -> Any:
    """Call a provider and await the result if it is awaitable (async resources)."""
    value = provider()
    if inspect.isawaitable(value):
        value = await value
    return value
