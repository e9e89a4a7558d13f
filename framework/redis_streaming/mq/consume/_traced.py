"""The consumer side of tracing: a subscription whose handler calls run in CONSUMER spans (see
:mod:`redis_streaming.mq.wire.tracing`)."""

from __future__ import annotations

from typing import Any

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Tracer

from redis_streaming.mq.consume.subscription import Subscription
from redis_streaming.mq.wire.message import Message
from redis_streaming.mq.wire.tracing import PREFIX, SYSTEM, span

__all__ = ["TracedSubscription"]


class TracedSubscription(Subscription):
    """A :class:`Subscription` whose handler calls each run in a CONSUMER span continuing the
    trace carried by the message's headers."""

    def __init__(self, *args: Any, tracer: Tracer, consumer_id: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tracer = tracer
        self._name = f"process {self.topic}"
        self._attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": self.topic,
            "messaging.consumer.group.name": self.group,
            "messaging.client.id": consumer_id,
        }

    async def call(self, message: Message) -> None:
        """Run the handler in a ``process {topic}`` span (see the module's documentation)."""
        attrs = {
            **self._attributes,
            "messaging.destination.partition.id": str(message.partition),
            "messaging.message.id": message.id,
            "messaging.message.body.size": len(message.raw),
            PREFIX + "attempt": message.attempt,
        }
        if message.origin_id is not None:
            attrs[PREFIX + "origin_id"] = message.origin_id
        if message.key is not None:
            attrs[PREFIX + "message.key"] = message.key
        parent = propagate.extract(message.headers)
        with span(self.tracer, self._name, SpanKind.CONSUMER, attrs, parent):
            await super().call(message)
