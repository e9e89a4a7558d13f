"""Tracing: producer spans, context in the headers, consumer spans continuing the trace."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from redis_streaming import (
    Consumer,
    Keys,
    Message,
    MQOptions,
    Producer,
    ProducerRecord,
    RetryPolicy,
    Subscription,
)
from redis_streaming.mq.topics import TopicStore
from tests.helpers import wait_until


def sdk() -> tuple[InMemorySpanExporter, Tracer]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider.get_tracer("test")


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def traceparent(span: ReadableSpan) -> str:
    ctx = span.get_span_context()
    assert ctx is not None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


async def entry_headers(redis: aioredis.Redis, stream: str) -> list[dict[str, str] | None]:
    """The headers of every entry of ``stream``, in order (None: no headers field)."""
    entries = await redis.xrange(stream)
    return [json.loads(f[b"headers"]) if b"headers" in f else None for _, f in entries]


async def test_consumer_span_continues_the_producer_span(
    rs_redis: aioredis.Redis, fast_options: MQOptions
) -> None:
    exporter, tracer = sdk()
    await TopicStore(rs_redis, fast_options).create("t", 2)
    seen: list[tuple[Message, Any]] = []

    async def handle(m: Message) -> None:
        seen.append((m, trace.get_current_span()))

    consumer = Consumer(rs_redis, fast_options, consumer_id="c1", tracer=tracer)
    consumer.subscribe("t", handle, group="g")
    producer = Producer(rs_redis, fast_options, tracer=tracer)
    async with consumer:
        sent = await producer.send("t", {"n": 1}, key="k", headers={"x": "1"})
        await producer.send("t", "later", partition=0, delay=0.05)
        await wait_until(lambda: len(seen) == 2, 10, "both messages handled")

    send, delayed_send = named(exporter, "send t")
    process = {s.attributes["messaging.message.id"]: s for s in named(exporter, "process t")}
    span = process[sent.message_id]
    assert send.kind is SpanKind.PRODUCER
    assert span.kind is SpanKind.CONSUMER
    assert span.context.trace_id == send.context.trace_id
    assert span.parent is not None
    assert span.parent.span_id == send.context.span_id
    assert span.status.status_code is StatusCode.UNSET
    assert dict(send.attributes) == {
        "messaging.system": "redis",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "t",
        "messaging.destination.partition.id": str(sent.partition),
        "messaging.message.id": sent.message_id,
    }
    assert dict(span.attributes) == {
        "messaging.system": "redis",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "t",
        "messaging.destination.partition.id": str(sent.partition),
        "messaging.consumer.group.name": "g",
        "messaging.client.id": "c1",
        "messaging.message.id": sent.message_id,
        "messaging.message.body.size": len(b'{"n":1}'),
        "messaging.redis_streaming.attempt": 1,
        "messaging.redis_streaming.message.key": "k",
    }
    message, current = next((m, c) for m, c in seen if m.id == sent.message_id)
    assert message.headers == {"x": "1", "traceparent": traceparent(send)}  # the user's kept
    assert current.get_span_context().span_id == span.context.span_id  # the handler runs in it

    # a delayed message carries its context through the delayed set
    assert delayed_send.attributes["messaging.redis_streaming.delay_ms"] == 50
    [later] = [s for s in process.values() if s.context.trace_id == delayed_send.context.trace_id]
    assert later.parent is not None
    assert later.parent.span_id == delayed_send.context.span_id


async def test_failed_attempts_are_recorded_and_retries_continue_the_trace(
    rs_redis: aioredis.Redis, fast_options: MQOptions
) -> None:
    exporter, tracer = sdk()
    await TopicStore(rs_redis, fast_options).create("t", 1)
    spans: list[int] = []

    def handle(m: Message) -> None:  # a plain function: runs in a thread, in the span
        spans.append(trace.get_current_span().get_span_context().span_id)
        if m.attempt < 3:
            raise ValueError(f"attempt {m.attempt} fails")

    consumer = Consumer(rs_redis, fast_options, consumer_id="c1", tracer=tracer)
    sub = consumer.subscribe("t", handle, group="g", retry=RetryPolicy(initial_backoff_s=0))
    async with consumer:
        sent = await Producer(rs_redis, fast_options, tracer=tracer).send("t", "flaky")
        await wait_until(lambda: sub.processed == 1, 10, "the third attempt")

    [send] = named(exporter, "send t")
    attempts = sorted(
        named(exporter, "process t"),
        key=lambda s: s.attributes["messaging.redis_streaming.attempt"],
    )
    assert [s.attributes["messaging.redis_streaming.attempt"] for s in attempts] == [1, 2, 3]
    assert [s.context.span_id for s in attempts] == spans
    for span in attempts:
        assert span.context.trace_id == send.context.trace_id
        assert span.parent is not None
        assert span.parent.span_id == send.context.span_id
    for span in attempts[:2]:
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "ValueError"
        [event] = span.events
        assert event.name == "exception"
        assert event.attributes["exception.type"] == "ValueError"
        assert "fails" in event.attributes["exception.message"]
    assert attempts[2].status.status_code is StatusCode.UNSET
    assert attempts[2].attributes["messaging.redis_streaming.origin_id"] == sent.message_id


async def test_send_many_is_one_span_and_a_callers_traceparent_wins(
    rs_redis: aioredis.Redis, fast_options: MQOptions
) -> None:
    exporter, tracer = sdk()
    await TopicStore(rs_redis, fast_options).create("t", 1)
    own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    records = [
        "plain",
        ProducerRecord("mine", headers={"traceparent": own, "x": "1"}),
        ProducerRecord("other", headers={"x": "2"}),
    ]
    await Producer(rs_redis, fast_options, tracer=tracer).send_many("t", records)
    [send] = named(exporter, "send t")
    assert send.kind is SpanKind.PRODUCER
    assert send.attributes["messaging.batch.message_count"] == 3
    ours = traceparent(send)
    assert await entry_headers(rs_redis, Keys(fast_options.namespace).stream("t", 0)) == [
        {"traceparent": ours},
        {"traceparent": own, "x": "1"},
        {"traceparent": ours, "x": "2"},
    ]


async def test_without_a_tracer_nothing_is_added(
    rs_redis: aioredis.Redis, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("t", 1)
    producer = Producer(rs_redis, fast_options)
    await producer.send("t", "a")
    await producer.send_many("t", ["b", ProducerRecord("c", headers={"x": "1"})])
    assert await entry_headers(rs_redis, Keys(fast_options.namespace).stream("t", 0)) == [
        None,
        None,
        {"x": "1"},
    ]
    sub = Consumer(rs_redis, fast_options).subscribe("t", lambda m: None, group="g")
    assert type(sub) is Subscription  # the handler is called directly, no tracing code
