"""Handling one entry: decode, call the handler, then ack, retry or dead-letter it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from redis_streaming.errors import DeadLetter, DecodeError, Retry
from redis_streaming.mq.aio import wait_event
from redis_streaming.mq.codec import decode_payload, entry_args, parse_fields
from redis_streaming.mq.dead_letter import DeadLetterWriter
from redis_streaming.mq.envelope import encode_envelope
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.lua import LuaScript
from redis_streaming.mq.message import Message
from redis_streaming.mq.subscription import Subscription
from redis_streaming.options import MQOptions

__all__ = ["Delivery", "Entry"]

log = logging.getLogger(__name__)
_SCHEDULE_RETRY = LuaScript("schedule_retry")


class Entry:
    """A stream entry as read or claimed: its stream, id, raw fields and delivery count."""

    __slots__ = ("deliveries", "fields", "id", "source")

    def __init__(self, source: str, id: bytes, fields: dict[bytes, bytes], deliveries: int):
        self.source = source
        self.id = id
        self.fields = fields
        self.deliveries = deliveries


class Delivery:
    """Per-partition handling of entries, with batched acknowledgements.

    Outcomes: success queues an XACK (sent at the end of the batch, or after ``ack_interval_ms``
    when handlers are slow); a failure is retried per the subscription's policy (delayed: an
    atomic schedule-and-ack; blocking: wait and call again, the entry staying pending) or
    dead-lettered. The final write is shielded from cancellation.
    """

    def __init__(
        self,
        redis: Any,
        options: MQOptions,
        sub: Subscription,
        partition: int,
        consumer_id: str,
        wake_mover: Callable[[], None],
        stopping: asyncio.Event,
        taking: Callable[[], bool],
    ) -> None:
        self.redis = redis
        self.options = options
        self.sub = sub
        self.partition = partition
        self.consumer_id = consumer_id
        self.retry_key = Keys(options.namespace).retry(sub.topic, partition, sub.group)
        self.writer = DeadLetterWriter(redis, options)
        self._wake_mover = wake_mover
        self._stopping = stopping
        self._taking = taking
        self._acks: dict[str, list[bytes]] = {}
        self._oldest_ack = 0.0

    # -- acknowledgements --------------------------------------------------------------------

    def _ack_later(self, entry: Entry) -> None:
        ids = self._acks.setdefault(entry.source, [])
        if not ids and not any(self._acks.values()):
            self._oldest_ack = time.monotonic()
        ids.append(entry.id)

    def queue_acks(self, pipe: Any) -> dict[str, int]:
        """Add the queued XACKs to ``pipe``; returns what to pass to :meth:`acked` on success."""
        todo = {}
        for key, ids in self._acks.items():
            if ids:
                pipe.xack(key, self.sub.group, *ids)
                todo[key] = len(ids)
        return todo

    def acked(self, todo: dict[str, int]) -> None:
        """Forget acknowledgements that Redis has confirmed."""
        for key, count in todo.items():
            del self._acks[key][:count]

    async def flush(self) -> None:
        """Send the queued XACKs in one round trip; on failure they stay queued."""
        if not any(self._acks.values()):
            return
        pipe = self.redis.pipeline(transaction=False)
        todo = self.queue_acks(pipe)
        await pipe.execute()
        self.acked(todo)

    async def flush_quietly(self) -> None:
        """``flush``, logging instead of raising (used on the way out)."""
        try:
            await self.flush()
        except Exception as exc:
            log.warning(
                "%s partition %d: could not acknowledge %d handled entries (%s); they will be "
                "delivered again",
                self.sub.topic,
                self.partition,
                sum(len(v) for v in self._acks.values()),
                exc,
            )

    # -- handling ----------------------------------------------------------------------------

    async def handle(self, entry: Entry) -> None:
        """Process one entry to its outcome (acked, retried, dead-lettered, or left pending)."""
        sub = self.sub
        try:
            fields = parse_fields(entry.fields)
            payload = decode_payload(fields.raw, fields.content_type)
        except DecodeError as exc:
            await self._dead_letter(entry, "undecodable", exc, entry.deliveries)
            return
        attempt = fields.attempt + entry.deliveries - 1
        if entry.deliveries > self.options.max_deliveries:
            reason = (
                f"delivered {entry.deliveries} times without being acknowledged (consumers "
                f"crashed or were killed while handling it); mq.max_deliveries is "
                f"{self.options.max_deliveries}"
            )
            await self._dead_letter(entry, "poison", reason, attempt)
            return
        message = Message(
            id=entry.id.decode(),
            topic=sub.topic,
            partition=self.partition,
            payload=payload,
            raw=fields.raw,
            content_type=fields.content_type,
            key=fields.key,
            headers=fields.headers,
            timestamp=fields.ts,
            attempt=attempt,
            group=sub.group,
            origin_id=fields.origin_id,
        )
        policy = sub.retry
        while True:
            sub.in_flight += 1
            try:
                await sub.call(message)
            except Exception as exc:
                error: Exception = exc
            else:
                sub.processed += 1
                self._ack_later(entry)
                if time.monotonic() - self._oldest_ack > self.options.ack_interval_ms / 1000:
                    await asyncio.shield(self.flush())
                return
            finally:
                sub.in_flight -= 1
            sub.failed += 1
            sub.record_error(error)
            if isinstance(error, DeadLetter):
                await self._dead_letter(entry, "rejected", error.reason, message.attempt)
                return
            if not isinstance(error, Retry) and not policy.is_retryable(error):
                await self._dead_letter(entry, "non_retryable", error, message.attempt)
                return
            if message.attempt >= policy.max_attempts:
                await self._dead_letter(entry, "max_attempts", error, message.attempt)
                return
            after = error.after if isinstance(error, Retry) else None
            delay_s = policy.backoff_s(message.attempt) if after is None else max(0.0, after)
            sub.retried += 1
            log.warning(
                "%s partition %d group %s: attempt %d of message %s failed (%s: %s); retrying "
                "in %.2fs",
                sub.topic,
                self.partition,
                sub.group,
                message.attempt,
                message.id,
                type(error).__name__,
                error,
                delay_s,
            )
            if policy.mode == "delayed":
                await asyncio.shield(self._schedule_retry(entry, message, delay_s))
                return
            if not await self._wait(delay_s):
                return  # stopping or lease lost: the entry stays pending for the next owner
            message = dataclasses.replace(message, attempt=message.attempt + 1)

    async def _wait(self, delay_s: float) -> bool:
        """Sleep ``delay_s`` unless stopping; True when processing may go on."""
        await wait_event(self._stopping, delay_s)
        return self._taking()

    async def _schedule_retry(self, entry: Entry, message: Message, delay_s: float) -> None:
        fields = entry_args(
            message.raw,
            message.content_type,
            message.key,
            entry.fields.get(b"headers"),
            message.timestamp,
            attempt=message.attempt + 1,
            origin_id=message.origin_id or message.id,
        )
        await _SCHEDULE_RETRY(
            self.redis,
            [self.retry_key, entry.source],
            [self.sub.group, entry.id, int(delay_s * 1000), encode_envelope(fields)],
        )
        self._wake_mover()

    async def _dead_letter(
        self, entry: Entry, reason: str, error: BaseException | str, attempts: int
    ) -> None:
        self.sub.dead_lettered += 1
        self.sub.record_error(error if isinstance(error, BaseException) else ValueError(error))
        log.error(
            "%s partition %d group %s: entry %s dead-lettered (%s) after %d attempt(s): %s",
            self.sub.topic,
            self.partition,
            self.sub.group,
            entry.id.decode(),
            reason,
            attempts,
            error,
        )
        await asyncio.shield(
            self.writer.write(
                topic=self.sub.topic,
                partition=self.partition,
                group=self.sub.group,
                consumer=self.consumer_id,
                source_key=entry.source,
                entry_id=entry.id.decode(),
                fields=entry.fields,
                reason=reason,
                attempts=attempts,
                error=error,
            )
        )
