"""Messaging: producer, consumer, admin, dead letters, delayed mover and housekeeper."""

from __future__ import annotations

from typing import Any

from redis_streaming import (
    Admin,
    Consumer,
    DeadLetters,
    DelayedMover,
    Housekeeper,
    MQOptions,
    Producer,
)
from redis_streaming.integration import default_consumer_id
from redis_streaming.metrics import Metrics
from redis_streaming_starter.settings import Settings

__all__ = [
    "instance_id",
    "make_admin",
    "make_consumer",
    "make_dead_letters",
    "make_delayed_mover",
    "make_housekeeper",
    "make_producer",
    "mq_options",
]


def mq_options(settings: Settings) -> MQOptions:
    """The ``mq`` section, which *is* the framework's ``MQOptions`` (plus starter fields)."""
    return settings.mq


def instance_id(settings: Settings) -> str:
    """``app.instance_id``, or ``<host>-<pid>-<random>``: the consumer id of this process."""
    return settings.app.instance_id or default_consumer_id()


def make_producer(redis: Any, settings: Settings, metrics: Metrics, tracer: Any) -> Producer:
    return Producer(redis, settings.mq, metrics=metrics, tracer=tracer)


def make_consumer(
    redis: Any, settings: Settings, consumer_id: str, metrics: Metrics, tracer: Any
) -> Consumer:
    # The application's DelayedMover moves every topic's delayed messages already.
    return Consumer(
        redis,
        settings.mq,
        consumer_id=consumer_id,
        metrics=metrics,
        tracer=tracer,
        move_delayed=False,
    )


def make_admin(redis: Any, settings: Settings) -> Admin:
    return Admin(redis, settings.mq)


def make_dead_letters(redis: Any, settings: Settings) -> DeadLetters:
    return DeadLetters(redis, settings.mq)


def make_delayed_mover(redis: Any, settings: Settings) -> DelayedMover:
    return DelayedMover(redis, settings.mq)


def make_housekeeper(redis: Any, settings: Settings) -> Housekeeper:
    return Housekeeper(redis, settings.mq, interval_s=settings.mq.housekeeping_interval_s)
