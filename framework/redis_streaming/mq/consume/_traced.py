"""The consumer side of tracing: a subscription whose handler calls run in CONSUMER spans (see
:mod:`redis_streaming.mq.wire.tracing`)."""

from __future__ import annotations

from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Tracer

from redis_streaming.mq.consume.subscription import Subscription
from redis_streaming.mq.wire.message import Message
from redis_streaming.mq.wire.tracing import PREFIX, SYSTEM, span

__all__ = ["TracedSubscription"]


class TracedSubscription(Subscription):
    """A :class:`Subscription` whose handler calls each run in a CONSUMER span continuing the
    trace carried by the message's headers; a batch handler's call runs in one span of its own,
    linked to the trace of each member."""

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

    async def call_batch(self, messages: list[Message]) -> None:
        """Run a batch handler in one ``process {topic}`` span of a new trace, with
        ``messaging.batch.message_count`` and a link to each member's trace context (the
        messaging conventions for batches)."""
        attrs = {
            **self._attributes,
            "messaging.destination.partition.id": str(messages[0].partition),
            "messaging.batch.message_count": len(messages),
        }
        with span(self.tracer, self._name, SpanKind.CONSUMER, attrs, Context()) as current:
            for message in messages:
                context = trace.get_current_span(propagate.extract(message.headers))
                if context.get_span_context().is_valid:
                    current.add_link(context.get_span_context())
            await super().call_batch(messages)
