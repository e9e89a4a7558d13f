"""The producer: partitioned, pipelined writes to partition streams."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import secrets
import socket
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from redis_streaming._redis.errors import as_unavailable, is_noscript
from redis_streaming.cluster import is_cluster, ready
from redis_streaming.errors import (
    InvalidArgument,
    PartitionOutOfRange,
    PayloadTooLarge,
    RequestTimeout,
)
from redis_streaming.metrics import Metrics, default_metrics
from redis_streaming.mq.durability import Durability
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.replies import (
    REPLY_MAXLEN,
    ReplyInbox,
    headers_of_reply,
    headers_of_request,
    reply_address,
)
from redis_streaming.mq.scripts import script
from redis_streaming.mq.topics import TopicMeta, TopicStore
from redis_streaming.mq.wire.codec import encode_headers, encode_payload, entry_args
from redis_streaming.mq.wire.envelope import encode_envelope
from redis_streaming.mq.wire.message import Message, ProducerRecord, SendResult
from redis_streaming.mq.wire.tracing import ProducerTracing, with_context

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ["Producer", "default_producer_id", "partition_for_key"]

_SCHEDULE = script("schedule_delayed")
_CHUNK = 1000


def partition_for_key(key: str, partitions: int) -> int:
    """The partition of ``key``: CRC-32 (IEEE, as zlib) of its UTF-8 bytes modulo ``partitions``.

    Stable across processes, restarts and languages (Java ``java.util.zip.CRC32``, Go
    ``hash/crc32.ChecksumIEEE``).
    """
    return zlib.crc32(key.encode()) % partitions


class _CachedTopic:
    """What the producer caches per topic for ``mq.topic_refresh_s``: partition count, stream and
    delayed-set keys, trimming arguments and the round-robin counter."""

    __slots__ = ("delayed", "expires", "maxlen", "partitions", "rr", "streams")

    def __init__(self, meta: TopicMeta, keys: Keys, expires: float, rr: itertools.count[int]):
        self.partitions = meta.partitions
        self.streams = [keys.stream(meta.name, i) for i in range(meta.partitions)]
        self.delayed = [keys.delayed(meta.name, i) for i in range(meta.partitions)]
        self.maxlen: tuple[Any, ...] = (
            ("MAXLEN", "~", meta.retention_max_len) if meta.retention_max_len else ()
        )
        self.expires = expires
        self.rr = rr


def _delay_ms(delay: float | timedelta | None) -> int:
    if delay is None:
        return 0
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if seconds != seconds or seconds < 0:  # NaN or negative
        raise InvalidArgument(f"delay must be >= 0 seconds, got {delay!r}")
    return int(seconds * 1000)


class Producer:
    """Sends messages to partitioned topics; safe to share between tasks.

    The partition is an explicit ``partition``, else :func:`partition_for_key` of the ``key`` (a
    key's messages keep their order), else the next in turn. Unknown topics are created while
    ``mq.auto_create_topics`` is on. Every error but
    :class:`~redis_streaming.errors.RedisUnavailable` and
    :class:`~redis_streaming.errors.DurabilityError` is raised before anything is written.
    ``metrics`` counts what is sent; with a ``tracer`` each call runs in a PRODUCER span whose
    context travels in the message headers. See docs/producer.md and docs/metrics.md, "Tracing".

    ``durability`` (default ``options.durability``: ``"leader"``, ``"replicas=N"``, ``"aof"``,
    ``"aof=N"``) says when a send counts as done: with ``replicas=N`` it returns once N replicas
    have the message (``WAIT``, in the same round trip), else raises ``DurabilityError`` after
    ``options.durability_timeout_ms`` (the message is on the master then; retrying may send it
    twice). See docs/high-availability.md.

    :meth:`request` sends a message and waits for its reply, which comes to this producer's
    own reply stream (``<ns>:reply:{<id>}``), read by one background task while requests wait;
    :meth:`close` stops it. ``id`` is ``<host>-<pid>-<random>``.
    """

    def __init__(
        self,
        redis: Any,
        options: MQOptions | None = None,
        *,
        metrics: Metrics | None = None,
        tracer: Tracer | None = None,
        durability: str | None = None,
    ) -> None:
        self.redis = redis
        self.options = options or MQOptions()
        self.durability = Durability(
            self.options.durability if durability is None else durability,
            self.options.durability_timeout_ms,
        )
        self.metrics = metrics or default_metrics()
        self._tracing = None if tracer is None else ProducerTracing(tracer)
        self.keys = Keys(self.options.namespace)
        self.topics = TopicStore(redis, self.options)
        self._cached: dict[str, _CachedTopic] = {}
        self.id = default_producer_id()
        self._inbox = ReplyInbox(redis, self.keys.reply(self.id), block_ms=self.options.block_ms)

    async def _cached_topic(self, topic: str, *, refresh: bool = False) -> _CachedTopic:
        cached = self._cached.get(topic)
        now = time.monotonic()
        if cached is not None and cached.expires > now and not refresh:
            return cached
        await ready(self.redis)  # a cluster client's slot map, before concurrent sends use it
        meta = await self.topics.require(topic)
        rr = cached.rr if cached is not None else itertools.count()
        cached = _CachedTopic(meta, self.keys, now + self.options.topic_refresh_s, rr)
        self._cached[topic] = cached
        return cached

    async def _pick(
        self, topic: str, cached: _CachedTopic, key: str | None, partition: int | None
    ) -> tuple[_CachedTopic, int]:
        """The partition for a message (and the cached topic, read again if the topic grew)."""
        if partition is not None:
            if 0 <= partition < cached.partitions:
                return cached, partition
            cached = await self._cached_topic(topic, refresh=True)  # the topic may have grown
            if 0 <= partition < cached.partitions:
                return cached, partition
            raise PartitionOutOfRange(topic, partition, cached.partitions)
        if key is not None:
            return cached, zlib.crc32(key.encode()) % cached.partitions
        return cached, next(cached.rr) % cached.partitions

    def _fields(
        self,
        topic: str,
        payload: Any,
        key: Any,
        headers: dict[str, str] | None,
        partition: Any,
        ts_ms: int,
    ) -> list[Any]:
        """Encode and check one message; raises before any I/O when it cannot be sent."""
        if key is not None and not isinstance(key, str):
            raise InvalidArgument(
                f"message key must be a str, got {type(key).__name__}; convert it with str()"
            )
        if partition is not None and (not isinstance(partition, int) or partition is True):
            raise InvalidArgument(f"partition must be an int, got {partition!r}")
        raw, content_type = encode_payload(payload)
        if len(raw) > self.options.max_payload_bytes:
            raise PayloadTooLarge(topic, len(raw), self.options.max_payload_bytes)
        return entry_args(raw, content_type, key, encode_headers(headers), ts_ms)

    async def send(
        self,
        topic: str,
        payload: Any,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        partition: int | None = None,
        delay: float | timedelta | None = None,
    ) -> SendResult:
        """Append one message to its partition and return where it went.

        ``delay`` (seconds or a ``timedelta``) parks the message until it is due; a
        :class:`~redis_streaming.DelayedMover` then appends it (delay measured on the Redis
        server's clock). The write is acknowledged by Redis before this returns.
        """
        tracing = self._tracing
        if tracing is None:
            return await self._send(topic, payload, key, headers, partition, delay)
        extra = {"messaging.redis_streaming.delay_ms": _delay_ms(delay)} if delay else {}
        with tracing.span(topic, **extra) as span:
            headers = with_context(tracing.context(), headers)
            result = await self._send(topic, payload, key, headers, partition, delay)
            tracing.sent(span, result)
            return result

    async def _send(
        self,
        topic: str,
        payload: Any,
        key: str | None,
        headers: dict[str, str] | None,
        partition: int | None,
        delay: float | timedelta | None,
    ) -> SendResult:
        fields = self._fields(topic, payload, key, headers, partition, time.time_ns() // 10**6)
        delay_ms = _delay_ms(delay)
        with as_unavailable(self.redis, f"sending to topic {topic!r}"):
            cached, p = await self._pick(topic, await self._cached_topic(topic), key, partition)
            if self.durability.waits:
                return await self._send_durably(topic, cached, p, fields, delay_ms)
            if delay_ms > 0:
                due = await _SCHEDULE(
                    self.redis, [cached.delayed[p]], [delay_ms, encode_envelope(fields)]
                )
                self.metrics.produced(topic, p, 1)
                return SendResult(topic, p, None, int(due))
            message_id = await self.redis.execute_command(
                "XADD", cached.streams[p], *cached.maxlen, "*", *fields
            )
        self.metrics.produced(topic, p, 1)
        return SendResult(topic, p, message_id.decode())

    async def _send_durably(
        self, topic: str, cached: _CachedTopic, p: int, fields: list[Any], delay_ms: int
    ) -> SendResult:
        """``_send`` with the durability wait after the write, in the same round trip (WAIT
        counts the writes of its own connection)."""
        await self.durability.ensure(self.redis)
        key = cached.delayed[p] if delay_ms > 0 else cached.streams[p]
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            if delay_ms > 0:
                _SCHEDULE.queue(pipe, [key], [delay_ms, encode_envelope(fields)])
            else:
                pipe.execute_command("XADD", key, *cached.maxlen, "*", *fields)
            self.durability.queue(pipe, self.redis, [key])
            try:
                replies = await pipe.execute()
                break
            except Exception as exc:  # a pipelined script is not reloaded: load, send again
                if attempt == 2 or not is_noscript(exc):
                    raise
                await _SCHEDULE.load(self.redis)
        self.metrics.produced(topic, p, 1)
        self.durability.check(replies[1:], f"sending to topic {topic!r}", 1)
        if delay_ms > 0:
            return SendResult(topic, p, None, int(replies[0]))
        return SendResult(topic, p, replies[0].decode())

    async def send_many(
        self,
        topic: str,
        messages: Iterable[Any | ProducerRecord],
        *,
        transaction: bool = False,
    ) -> list[SendResult]:
        """Append many messages, pipelined (one round trip per 1,000), in the given order.

        Items are payloads or :class:`ProducerRecord` values. Every item is encoded and checked
        before the first write, so a bad item raises without anything being sent. Should the
        connection fail midway, a prefix of the batch may have been written.

        ``transaction=True`` writes them all in one round trip inside ``MULTI``/``EXEC`` (on a
        cluster: when they all go to one partition; otherwise pipelined as usual): a command
        Redis refuses (no permission, out of memory) aborts them all. Redis does not roll back,
        so a write that fails while the transaction runs (a partition key holding another
        type) leaves the others written. With a durability
        level that waits, each round trip ends with one wait for its messages; a
        ``DurabilityError`` means the round trips before it were confirmed, its own messages
        are on the master only, and later ones were not sent.
        """
        tracing = self._tracing
        if tracing is None:
            return await self._send_many(topic, messages, None, transaction)
        with tracing.span(topic) as span:
            results = await self._send_many(topic, messages, tracing.context(), transaction)
            span.set_attribute("messaging.batch.message_count", len(results))
            return results

    async def _send_many(
        self,
        topic: str,
        messages: Iterable[Any | ProducerRecord],
        context: dict[str, str] | None,
        transaction: bool = False,
    ) -> list[SendResult]:
        ts = time.time_ns() // 10**6
        encoded: list[tuple[list[Any], str | None, int | None]] = []
        for item in messages:
            if isinstance(item, ProducerRecord):
                headers = item.headers if context is None else with_context(context, item.headers)
                fields = self._fields(topic, item.payload, item.key, headers, item.partition, ts)
                encoded.append((fields, item.key, item.partition))
            else:
                encoded.append((self._fields(topic, item, None, context, None, ts), None, None))
        with as_unavailable(self.redis, f"sending to topic {topic!r}"):
            await self.durability.ensure(self.redis)
            cached = await self._cached_topic(topic)
            batch: list[tuple[int, list[Any]]] = []
            for fields, key, partition in encoded:
                cached, p = await self._pick(topic, cached, key, partition)
                batch.append((p, fields))
            results: list[SendResult] = []
            size = max(1, len(batch)) if transaction else _CHUNK
            for start in range(0, len(batch), size):
                chunk = batch[start : start + size]
                # A cluster runs a transaction on one slot only: one partition's keys.
                atomic = transaction and (
                    not is_cluster(self.redis) or len({p for p, _ in chunk}) == 1
                )
                streams = [cached.streams[p] for p, _ in chunk]
                ids, waits = await self._write_chunk(streams, chunk, cached.maxlen, atomic)
                for p, n in Counter(p for p, _ in chunk).items():
                    self.metrics.produced(topic, p, n)
                self.durability.check(waits, f"sending to topic {topic!r}", len(chunk))
                results.extend(
                    SendResult(topic, p, mid.decode())
                    for (p, _), mid in zip(chunk, ids, strict=True)
                )
        return results

    async def _write_chunk(
        self,
        streams: list[str],
        chunk: list[tuple[int, list[Any]]],
        maxlen: tuple[Any, ...],
        atomic: bool,
    ) -> tuple[list[Any], list[Any]]:
        """One round trip of ``send_many``: the XADDs (inside MULTI/EXEC when ``atomic``), then
        the durability wait; returns the entry ids and the wait replies."""
        if atomic and self.durability.waits:
            # redis-py's transaction pipeline would put the wait inside MULTI, where WAIT does
            # not block: MULTI and EXEC are sent as commands, the wait after EXEC on the same
            # connection (on a cluster: the node of the chunk's single partition).
            node = self.redis.get_node_from_key(streams[0]) if is_cluster(self.redis) else None
            target = {} if node is None else {"target_nodes": node}
            pipe = self.redis.pipeline(transaction=False)
            pipe.execute_command("MULTI", **target)
        else:
            pipe = self.redis.pipeline(transaction=atomic)
        for stream, (_, fields) in zip(streams, chunk, strict=True):
            pipe.execute_command("XADD", stream, *maxlen, "*", *fields)
        if atomic and self.durability.waits:
            pipe.execute_command("EXEC", **target)
        # One wait after the chunk's writes (per node on a cluster), same round trip.
        waits = self.durability.queue(pipe, self.redis, set(streams))
        replies = await pipe.execute()
        if atomic and self.durability.waits:  # OK, QUEUED..., [ids], waits
            return list(replies[len(chunk) + 1]), replies[len(chunk) + 2 :]
        return replies[: len(chunk)], replies[len(replies) - waits :]

    async def partitions_for(self, topic: str) -> int:
        """The partition count of ``topic`` (cached for ``mq.topic_refresh_s``), creating the
        topic as :meth:`send` would: raises :class:`~redis_streaming.TopicNotFound` when it
        does not exist and ``mq.auto_create_topics`` is off."""
        with as_unavailable(self.redis, f"reading topic {topic!r}"):
            return (await self._cached_topic(topic)).partitions

    # -- request and reply (mq/replies.py) ---------------------------------------------------

    async def request(
        self,
        topic: str,
        payload: Any,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the contract
    ) -> Message:
        """Send a request to ``topic`` and return the reply, waiting ``timeout`` seconds at most.

        The message carries ``x-reply-to`` (this producer's id) and ``x-correlation-id``
        headers; a handler answers with :meth:`reply` (a starter listener answers with its
        return value). The reply is a :class:`~redis_streaming.Message` (``topic`` and
        ``partition`` of the request, the reply's own ``id``, ``payload`` and ``headers``).
        Raises :class:`~redis_streaming.RequestTimeout` (a ``TimeoutError``) when no reply
        came in time, and :class:`~redis_streaming.RequestFailed` when the handler answered
        with an error (the request was dead-lettered). Any number of requests may wait at once.
        """
        if not (isinstance(timeout, int | float) and timeout > 0):
            raise InvalidArgument(f"timeout must be a number of seconds > 0, got {timeout!r}")
        correlation_id = secrets.token_hex(12)
        request_headers = headers_of_request(headers, self.id, correlation_id)
        with as_unavailable(self.redis, "opening the reply stream"):
            future = await self._inbox.expect(correlation_id)
        try:
            sent = await self.send(topic, payload, key=key, headers=request_headers)
            try:
                async with asyncio.timeout(timeout):
                    reply = await future
            except TimeoutError:
                raise RequestTimeout(topic, timeout) from None
        finally:
            self._inbox.forget(correlation_id)
        return reply.message(sent)

    async def reply(self, request: Message, payload: Any, *, error: str | None = None) -> bool:
        """Answer ``request`` (a message :meth:`request` sent) with ``payload``, or with
        ``error`` (its requester raises :class:`~redis_streaming.RequestFailed` with it).

        Returns False, writing nothing, when ``request`` carries no reply address or its
        requester is gone (its reply stream expired); True once the reply is written.
        """
        address = reply_address(request.headers)
        if address is None:
            return False
        inbox, correlation_id = address
        headers = headers_of_reply(correlation_id, error)
        fields = self._fields(request.topic, payload, None, headers, None, time.time_ns() // 10**6)
        with as_unavailable(self.redis, f"replying to a request of topic {request.topic!r}"):
            written = await self.redis.execute_command(
                "XADD", self.keys.reply(inbox), "NOMKSTREAM",
                "MAXLEN", "~", REPLY_MAXLEN, "*", *fields,
            )  # fmt: skip
        return written is not None

    @staticmethod
    def wants_reply(message: Message) -> bool:
        """True when ``message`` is a request that :meth:`reply` can answer."""
        return reply_address(message.headers) is not None

    async def close(self) -> None:
        """Stop reading replies: requests still waiting raise
        :class:`~redis_streaming.RequestFailed`, and the reply stream is deleted. Sending goes
        on working; a later :meth:`request` starts reading again."""
        await self._inbox.close()


def default_producer_id() -> str:
    """``<host>-<pid>-<random>``: the id of a producer's reply inbox, unique per producer."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:100] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"
