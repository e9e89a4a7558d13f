"""Messaging: the ``mq`` options and this process's consumer id. The container builds the
producer, consumer, admin, dead letters, delayed mover and housekeeper from the ``mq`` section
directly."""

from __future__ import annotations

from redis_streaming import MQOptions
from redis_streaming.integration import default_consumer_id
from redis_streaming_starter.settings import Settings

__all__ = ["instance_id", "mq_options"]


def mq_options(settings: Settings) -> MQOptions:
    """The ``mq`` section, which *is* the framework's ``MQOptions`` (plus starter fields)."""
    return settings.mq


def instance_id(settings: Settings) -> str:
    """``app.instance_id``, or ``<host>-<pid>-<random>``: the consumer id of this process."""
    return settings.app.instance_id or default_consumer_id()
