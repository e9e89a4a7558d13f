"""OpenTelemetry tracing of producers and consumers (docs/design.md, "Metrics and tracing"),
API only. The consumer side is ``mq.consume._traced.TracedSubscription``.

Only built when a ``tracer`` is given to :class:`~redis_streaming.Producer` or
:class:`~redis_streaming.Consumer`; without one, nothing here runs.

- The producer runs ``send`` (also delayed) and ``send_many`` in a PRODUCER span
  ``send {topic}`` and injects the span's context into the message headers with the global
  propagator (W3C ``traceparent`` and ``tracestate``, plus ``baggage``, by default). One span
  covers a whole ``send_many`` call, and every message of it carries that span's context: a span
  per message would cost more than the messages themselves.
- Headers given by the caller are kept. When they already hold a ``traceparent``, the caller's
  context wins: nothing is injected into that message.
- The consumer runs each handler call in a CONSUMER span ``process {topic}`` whose parent is the
  context extracted from the message's headers (a message without one starts a new trace).
  Retries and replays keep the original headers, so every attempt continues the same trace.
  A handler exception is recorded on its span, with status ERROR and ``error.type``.

Attributes follow the OpenTelemetry messaging semantic conventions; ``messaging.system`` is
``redis`` and the library adds ``messaging.redis_streaming.attempt`` (delivery attempt,
from 1), ``.origin_id`` (a retry's or replay's original entry id), ``.message.key`` and
``.delay_ms`` (delayed sends).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer

from redis_streaming.mq.wire.message import SendResult

__all__ = ["PREFIX", "SYSTEM", "ProducerTracing", "span", "with_context"]

SYSTEM = "redis"
PREFIX = "messaging.redis_streaming."  # the library's own attributes


def _error_type(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


@contextmanager
def span(
    tracer: Tracer,
    name: str,
    kind: SpanKind,
    attributes: dict[str, Any],
    context: Context | None = None,
) -> Iterator[Span]:
    """A span, current while the body runs and ended after it. An exception is recorded on
    it with status ERROR (by ``use_span``) and ``error.type``; a cancellation only ends it."""
    current = tracer.start_span(name, context=context, kind=kind, attributes=attributes)
    with trace.use_span(current, end_on_exit=True):
        try:
            yield current
        except Exception as exc:
            current.set_attribute("error.type", _error_type(exc))
            raise


def with_context(context: Mapping[str, str], headers: Mapping[str, str] | None) -> dict[str, str]:
    """``headers`` plus the propagated ``context`` headers; the caller's headers win, and a
    caller's ``traceparent`` keeps the whole message out of the producer's trace."""
    if not headers:
        return dict(context)
    if "traceparent" in headers:
        return dict(headers)
    return {**context, **headers}


class ProducerTracing:
    """The producer side: PRODUCER spans and context injection."""

    __slots__ = ("tracer",)

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def span(self, topic: str, **attributes: Any) -> AbstractContextManager[Span]:
        """The ``send {topic}`` span, current inside the ``with`` block."""
        attrs = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": topic,
            **attributes,
        }
        return span(self.tracer, f"send {topic}", SpanKind.PRODUCER, attrs)

    @staticmethod
    def context() -> dict[str, str]:
        """The current context (the producer span, inside :meth:`span`) as headers."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier

    @staticmethod
    def sent(span: Span, result: SendResult) -> None:
        """Add where a single message went."""
        span.set_attribute("messaging.destination.partition.id", str(result.partition))
        if result.message_id is not None:
            span.set_attribute("messaging.message.id", result.message_id)
