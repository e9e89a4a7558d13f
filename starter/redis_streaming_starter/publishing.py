"""What becomes of a listener's result: publications to ``publish_to``, the reply to a request,
an error reply when the request is dead-lettered, and a warning when nothing takes it.

All of it happens inside the handler, before the message is acknowledged: a failed write
raises there, and the consumer retries the message per its policy (docs/listeners.md,
"Publishing results").
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from redis_streaming import (
    ConfigurationError,
    DeadLetter,
    DecodeError,
    Message,
    Producer,
    ProducerRecord,
    Retry,
    RetryPolicy,
    TopicNotFound,
)
from redis_streaming_starter.batch_binding import is_batch
from redis_streaming_starter.binding import Handler, MessageHandler, Yielded
from redis_streaming_starter.listener import ListenerSpec

__all__ = [
    "ORIGIN_GROUP",
    "ORIGIN_ID",
    "ORIGIN_INDEX",
    "ORIGIN_PARTITION",
    "ORIGIN_TOPIC",
    "Outcome",
    "check_publish_to",
    "dead_letter_reason",
    "listener_handler",
    "warn_unpublished_return",
]

log = logging.getLogger("redis_streaming_starter")

# Headers of a published result naming the message it came from: together with the group
# and the result's index, a key that downstream can deduplicate on (a message handled twice,
# after a crash before its acknowledgement, publishes the same results again).
ORIGIN_TOPIC = "x-origin-topic"
ORIGIN_PARTITION = "x-origin-partition"
ORIGIN_ID = "x-origin-id"  # the original entry's id, the same on every retry of it
ORIGIN_GROUP = "x-origin-group"
ORIGIN_INDEX = "x-origin-index"  # the result's position among those of one call, from 0
# Copied from the message when no span is current (tracing off): the result stays in the
# message's trace. With tracing on, the producer's span (a child of the listener's) is injected.
_TRACE_HEADERS = ("traceparent", "tracestate", "baggage")
_NO_RESULT = (type(None), typing.NoReturn, typing.Never)


async def listener_handler(
    handler: Handler,
    spec: ListenerSpec,
    producer: Producer,
    policy: RetryPolicy,
    listener_id: str,
    where: str,
) -> Handler:
    """What the application subscribes for a bound listener: an :class:`Outcome` around it,
    once ``publish_to`` is checked (and the return annotation warned about). A batch listener
    is subscribed as it is: its results are not published, nor requests answered (a
    ``publish_to`` on one is a ConfigurationError)."""
    if is_batch(handler):
        if spec.publish_to is not None:
            raise ConfigurationError(
                f"listener {where} is a batch listener: publish_to is not available for batch "
                "listeners; publish from the listener (inject the producer with "
                "Provide[Container.producer]), or handle one message at a time"
            )
        return handler
    await check_publish_to(producer, spec, where)
    warn_unpublished_return(getattr(handler, "__wrapped__", handler), spec, where)
    return Outcome(typing.cast(MessageHandler, handler), spec, producer, policy, listener_id)


def dead_letter_reason(error: Exception, attempt: int, policy: RetryPolicy) -> str | None:
    """The reason the consumer dead-letters a message whose handler raised ``error`` on
    ``attempt``, or None when it is retried (the rules of docs/retries.md)."""
    if isinstance(error, DeadLetter):
        return "rejected"
    if isinstance(error, DecodeError):
        return "undecodable"
    if not isinstance(error, Retry) and not policy.is_retryable(error):
        return "non_retryable"
    if attempt >= policy.max_attempts:
        return "max_attempts"
    return None


class Outcome:
    """The handler the consumer runs for a listener: the bound listener, then its results
    published and the request answered; a failure that dead-letters a request answers it with
    an error."""

    def __init__(
        self,
        handler: MessageHandler,
        spec: ListenerSpec,
        producer: Producer,
        policy: RetryPolicy,
        listener_id: str,
    ) -> None:
        self.handler = handler
        self.publish_to = spec.publish_to
        self.publish_key = spec.publish_key
        self.producer = producer
        self.policy = policy
        self.listener_id = listener_id
        self.warned = False
        self.__name__ = getattr(handler, "__name__", "listener")
        self.__qualname__ = getattr(handler, "__qualname__", self.__name__)

    async def __call__(self, message: Message) -> None:
        try:
            result = await self.handler(message)
        except Exception as exc:
            await self._answer_failure(message, exc)
            raise
        items = list(result) if isinstance(result, Yielded) else [result]
        items = [r for r in items if r is not None]
        if self.publish_to is not None and items:
            # One call's results together: one MULTI on a single server (all or none).
            records = [self._record(message, i, item) for i, item in enumerate(items)]
            await self.producer.send_many(self.publish_to, records, transaction=True)
        if self.producer.wants_reply(message):
            answer = [_payload(r) for r in items] if isinstance(result, Yielded) else result
            await self.producer.reply(message, _payload(answer))
        elif items and self.publish_to is None and not self.warned:
            self.warned = True
            log.warning(
                "listener %s returned a %s that nothing publishes (no publish_to, and the "
                "message was not a request); set @listener(..., publish_to='<topic>') to "
                "publish it, or return None. (Logged once per listener.)",
                self.listener_id,
                type(items[0]).__name__,
            )

    def _record(self, message: Message, index: int, item: Any) -> ProducerRecord:
        headers = {
            **_carried(message.headers),
            ORIGIN_TOPIC: message.topic,
            ORIGIN_PARTITION: str(message.partition),
            ORIGIN_ID: message.origin_id or message.id,
            ORIGIN_GROUP: message.group or "",
            ORIGIN_INDEX: str(index),
        }
        if isinstance(item, ProducerRecord):  # the listener chose key, headers, partition
            return ProducerRecord(
                item.payload, item.key, {**headers, **(item.headers or {})}, item.partition
            )
        key = message.key if self.publish_key is None else self.publish_key(item)
        return ProducerRecord(item, key, headers)

    async def _answer_failure(self, message: Message, exc: Exception) -> None:
        if not self.producer.wants_reply(message):
            return
        reason = dead_letter_reason(exc, message.attempt, self.policy)
        if reason is None:
            return  # retried: the answer comes from a later attempt
        text = exc.reason if isinstance(exc, DeadLetter) else f"{type(exc).__name__}: {exc}"
        try:
            await self.producer.reply(message, None, error=f"dead-lettered ({reason}): {text}")
        except Exception as reply_exc:  # the requester times out instead
            log.warning(
                "listener %s: could not answer request %s with its failure: %s",
                self.listener_id,
                message.id,
                reply_exc,
            )


def _payload(value: Any) -> Any:
    return value.payload if isinstance(value, ProducerRecord) else value


def _carried(headers: dict[str, str]) -> dict[str, str]:
    if trace.get_current_span().get_span_context().is_valid:
        return {}
    return {name: headers[name] for name in _TRACE_HEADERS if name in headers}


async def check_publish_to(producer: Producer, spec: ListenerSpec, where: str) -> None:
    """Startup: ``publish_to`` exists, or is created as the producer creates unknown topics."""
    if spec.publish_to is None:
        return
    try:
        await producer.partitions_for(spec.publish_to)
    except TopicNotFound as exc:
        raise ConfigurationError(
            f"listener {where}: publish_to={spec.publish_to!r}: {exc}"
        ) from None


def warn_unpublished_return(fn: Callable[..., Any], spec: ListenerSpec, where: str) -> None:
    """Startup: a WARNING when ``fn`` is annotated to return something and has no
    ``publish_to`` (what it returns only answers requests)."""
    if spec.publish_to is not None:
        return
    try:
        returns = typing.get_type_hints(fn).get("return", inspect.Parameter.empty)
    except Exception:
        return
    if returns is inspect.Parameter.empty or returns in _NO_RESULT:
        return
    log.warning(
        "listener %s is annotated to return %s but has no publish_to: its results are "
        "published nowhere (they only answer requests); set @listener(..., "
        "publish_to='<topic>') to publish them, or annotate it -> None",
        where,
        getattr(returns, "__name__", returns),
    )
