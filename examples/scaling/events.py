"""The topic and the listener every worker runs: record each event, idempotently."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from pydantic import BaseModel

from redis_streaming import Message
from redis_streaming_starter import Container, Settings, listener

TOPIC = "events"
PARTITIONS = 12


class Event(BaseModel):
    device: str
    seq: int


def handled_key(namespace: str) -> str:
    """The Redis set of handled events (``<device>:<seq>``), in the application's namespace."""
    return f"{namespace}:scaling-example:handled"


@listener(TOPIC, group="scaling")
async def record(
    event: Event,
    message: Message,
    redis: Any = Provide[Container.redis],
    settings: Settings = Provide[Container.settings],
) -> None:
    """Delivery is at least once: after a worker is killed, the events it had read but not
    acknowledged are delivered again to the partition's next owner. A set makes that harmless."""
    await redis.sadd(handled_key(settings.mq.namespace), f"{event.device}:{event.seq}")
