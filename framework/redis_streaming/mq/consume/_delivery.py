"""Handling one entry: decode, call the handler, then ack, retry or dead-letter it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from redis_streaming._redis.background import FinalWrites, Prefixed, wait_event
from redis_streaming.errors import DeadLetter, DecodeError, Retry
from redis_streaming.metrics import Metrics, default_metrics
from redis_streaming.metrics.batching import PartitionCounts, duration_sampler
from redis_streaming.mq.consume.subscription import Subscription
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.retry.dead_letter import DeadLetterWriter
from redis_streaming.mq.scripts import script
from redis_streaming.mq.wire.codec import decode_payload, entry_args, parse_fields
from redis_streaming.mq.wire.envelope import encode_envelope
from redis_streaming.mq.wire.message import Message

__all__ = ["SKIPPED", "Delivery", "Entry", "QueuedOutcomes"]

log = logging.getLogger(__name__)
_SCHEDULE_RETRY = script("schedule_retry")


class _Skipped(Exception):
    """The outcome of a message its subscription's filter skipped (never raised)."""


SKIPPED = _Skipped("skipped by the filter")


class Entry:
    """A stream entry as read or claimed: its stream, id, raw fields and delivery count."""

    __slots__ = ("deliveries", "fields", "id", "source")

    def __init__(self, source: str, id: bytes, fields: dict[bytes, bytes], deliveries: int):
        self.source = source
        self.id = id
        self.fields = fields
        self.deliveries = deliveries


class QueuedOutcomes(NamedTuple):
    """What :meth:`Delivery.queue_outcomes` put in a pipeline: the first ``retries`` queued
    retry schedules and the first ``acks[key]`` queued XACK ids of each stream."""

    retries: int
    acks: dict[str, int]


class Delivery:
    """Per-partition handling of entries, with batched acknowledgements.

    Outcomes: success queues an XACK (sent at the end of the batch, or after ``ack_interval_ms``
    when handlers are slow); a failure is retried per the subscription's policy (delayed: an
    atomic schedule-and-ack, sent at once when the retry has a delay, so the retry mover is
    woken in time; blocking: wait and call again, the entry staying pending) or dead-lettered
    (written, then acknowledged; a failed write leaves the entry pending). The final write is
    shielded from cancellation and kept in :attr:`final_writes` until it ends. A subscription's
    filter runs before the handler: a message it skips queues an XACK (counted in
    ``Subscription.filtered``), a filter that raises fails the message as a handler would.

    Metrics: handler durations (all calls, or a sample above 200 a second: see
    :class:`~redis_streaming.metrics.batching.DurationSampler`); acked counts as Redis confirms
    them, added to the counter at most twice a second
    (:class:`~redis_streaming.metrics.batching.PartitionCounts`); retried and dead-lettered
    where they happen.
    """

    def __init__(
        self,
        redis: Any,
        options: MQOptions,
        sub: Subscription,
        partition: int,
        consumer_id: str,
        wake_mover: Callable[[float], None],
        stopping: asyncio.Event,
        taking: Callable[[], bool],
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.redis = redis
        self.options = options
        self.sub = sub
        self.partition = partition
        self.consumer_id = consumer_id
        keys = Keys(options.namespace)
        self.retry_key = keys.retry(sub.topic, partition, sub.group)
        self.redeliver_key = keys.redeliver(sub.topic, partition, sub.group)
        self.writer = DeadLetterWriter(redis, options)
        self.final_writes = FinalWrites(f"{sub.topic} partition {partition}")
        self.log = Prefixed(log, f"{sub.topic} partition {partition} group {sub.group}")
        self._wake_mover = wake_mover
        self._stopping = stopping
        self._taking = taking
        self._acks: dict[str, list[bytes]] = {}
        self._retries: list[list[Any]] = []
        self._queued = 0
        self._oldest = 0.0
        self.metrics = metrics or default_metrics()
        self.labels = self.metrics.labels(sub.topic, partition, sub.group, consumer_id)
        self.counts = PartitionCounts(self.metrics, self.labels)
        self._durations = duration_sampler(self.metrics)

    # -- batched outcomes ----------------------------------------------------------------
    # Acks and delayed-retry schedules of handled entries are queued and sent together, in
    # front of the next read (or sooner, see ack_interval_ms). Until then the entries stay
    # pending, so a crash redelivers them: nothing is lost, at worst handled twice.

    def _queue(self, entry: Entry, retry: list[Any] | None = None) -> None:
        if not self._queued:
            self._oldest = time.monotonic()
        self._queued += 1
        if retry is None:
            self._acks.setdefault(entry.source, []).append(entry.id)
        else:
            self._retries.append(retry)

    def queue_outcomes(self, pipe: Any) -> QueuedOutcomes:
        """Add queued retry schedules and XACKs to ``pipe``; once it has run, pass the result
        to :meth:`mark_sent`."""
        for args in self._retries:
            _SCHEDULE_RETRY.queue(pipe, args[:3], args[3:])
        acks = {}
        for key, ids in self._acks.items():
            if ids:
                pipe.xack(key, self.sub.group, *ids)
                acks[key] = len(ids)
        return QueuedOutcomes(len(self._retries), acks)

    def mark_sent(self, queued: QueuedOutcomes) -> None:
        """Forget outcomes that Redis has confirmed; wake the retry mover for new retries."""
        retries, acks = queued
        if retries:
            soonest = min(int(args[5]) for args in self._retries[:retries])
            del self._retries[:retries]
            if soonest > 0:  # due-at-once retries went straight to the redelivery stream
                self._wake_mover(time.monotonic() + soonest / 1000)
        acked = 0
        for key, count in acks.items():
            del self._acks[key][:count]
            acked += count
        self._queued -= retries + acked
        if acked:
            self.counts.acked(acked)

    @property
    def queued(self) -> int:
        """Outcomes waiting to be sent."""
        return self._queued

    async def flush(self) -> None:
        """Send queued outcomes in one round trip; on failure they stay queued."""
        if not self._queued:
            return
        pipe = self.redis.pipeline(transaction=False)
        queued = self.queue_outcomes(pipe)
        await pipe.execute()
        self.mark_sent(queued)

    async def load_scripts(self) -> None:
        """Cache the retry script on the partition's node (pipelined EVALSHA cannot load it)."""
        await _SCHEDULE_RETRY.load(self.redis, self.retry_key)

    async def flush_quietly(self) -> None:
        """``flush``, logging instead of raising (used on the way out)."""
        try:
            await self.flush()
        except Exception as exc:
            log.warning(
                "%s partition %d: could not send %d acknowledgements or retries (%s); those "
                "entries stay pending and will be delivered again",
                self.sub.topic,
                self.partition,
                self._queued,
                exc,
            )
        self.counts.flush()

    # -- handling ----------------------------------------------------------------------------

    async def handle(self, entry: Entry) -> None:
        """Process one entry to its outcome (acked, retried, dead-lettered, or left pending)."""
        message = await self._message(entry)
        while message is not None:
            error = None if self.sub.filter is None else self._screen(message)
            if error is None:
                error = await self._call(message)
                if error is None:
                    self.sub.processed += 1
                    self._queue(entry)
                    await self._flush_if_old()
                    return
            elif error is SKIPPED:
                self.sub.filtered += 1
                self._queue(entry)
                await self._flush_if_old()
                return
            message = await self._failed(entry, message, error)

    def _screen(self, message: Message) -> Exception | None:
        """Apply the subscription's filter: None to handle the message, :data:`SKIPPED` to
        acknowledge it unhandled, or the exception the filter raised (a failure)."""
        try:
            keep = self.sub.filter(message)  # type: ignore[misc]  # only called with a filter
        except Exception as exc:
            return exc
        return None if keep else SKIPPED

    async def _message(self, entry: Entry) -> Message | None:
        """Decode the entry; dead-letters it (and returns None) when it is undecodable or a
        poison message."""
        try:
            fields = parse_fields(entry.fields)
            payload = decode_payload(fields.raw, fields.content_type)
        except DecodeError as exc:
            await self._dead_letter(entry, "undecodable", exc, entry.deliveries)
            return None
        attempt = fields.attempt + entry.deliveries - 1
        if entry.deliveries > self.options.max_deliveries:
            reason = (
                f"delivered {entry.deliveries} times without being acknowledged (consumers "
                f"crashed or were killed while handling it); mq.max_deliveries is "
                f"{self.options.max_deliveries}"
            )
            await self._dead_letter(entry, "poison", reason, attempt)
            return None
        return Message(
            id=entry.id.decode(),
            topic=self.sub.topic,
            partition=self.partition,
            payload=payload,
            raw=fields.raw,
            content_type=fields.content_type,
            key=fields.key,
            headers=fields.headers,
            timestamp=fields.ts,
            attempt=attempt,
            group=self.sub.group,
            origin_id=fields.origin_id,
        )

    async def _call(self, message: Message) -> Exception | None:
        """Run the handler; returns what it raised. (A separate frame, so the exception's
        traceback does not form a reference cycle with ``handle``'s locals.)"""
        self.sub.in_flight += 1
        timed = self._durations.sample()
        start = time.perf_counter() if timed else 0.0
        try:
            await self.sub.call(message)
        except Exception as exc:
            if timed:
                self.metrics.handler_duration(self.labels.error, time.perf_counter() - start)
            return exc
        finally:
            self.sub.in_flight -= 1
        if timed:
            self.metrics.handler_duration(self.labels.success, time.perf_counter() - start)
        return None

    async def _failed(self, entry: Entry, message: Message, error: Exception) -> Message | None:
        """Retry or dead-letter after a failed call. Returns the message to call again now
        (blocking retries), or None when the entry has its outcome or stays pending."""
        delay_s = await self._settle(entry, message, error)
        if delay_s is None:
            return None
        if self.sub.retry.mode == "delayed":
            if delay_s > 0:
                # Sent now, not in front of the next read: that read blocks up to block_ms,
                # and the retry mover is woken only once Redis has confirmed the schedule.
                await self.final_writes.shield(self.flush())
            else:  # due at once: straight to the redelivery stream, read by the next read
                await self._flush_if_old()
            return None
        if not await self._wait(delay_s):
            return None  # stopping or lease lost: the entry stays pending for the next owner
        return dataclasses.replace(message, attempt=message.attempt + 1)

    async def _settle(self, entry: Entry, message: Message, error: Exception) -> float | None:
        """Count the failure and decide: dead-letter the entry now (returns None), or retry it
        after the returned delay, in seconds. A delayed-mode retry is queued here (sent by the
        caller); a blocking-mode one is the caller's to wait for and call again."""
        sub, policy = self.sub, self.sub.retry
        sub.failed += 1
        sub.record_error(error)
        if isinstance(error, DeadLetter):
            await self._dead_letter(entry, "rejected", error.reason, message.attempt)
            return None
        if isinstance(error, DecodeError):  # the handler could not bind the payload
            await self._dead_letter(entry, "undecodable", error, message.attempt)
            return None
        if not isinstance(error, Retry) and not policy.is_retryable(error):
            await self._dead_letter(entry, "non_retryable", error, message.attempt)
            return None
        if message.attempt >= policy.max_attempts:
            await self._dead_letter(entry, "max_attempts", error, message.attempt)
            return None
        after = error.after if isinstance(error, Retry) else None
        delay_s = policy.backoff_s(message.attempt) if after is None else max(0.0, after)
        sub.retried += 1
        self.metrics.retried(self.labels)
        if log.isEnabledFor(logging.INFO):
            self.log.info(
                "attempt %d of message %s failed (%s: %s); retrying in %.2fs",
                message.attempt,
                message.id,
                type(error).__name__,
                error,
                delay_s,
            )
        if policy.mode == "delayed":
            self._queue(entry, self._retry_args(entry, message, delay_s))
        return delay_s

    async def _wait(self, delay_s: float) -> bool:
        """Sleep ``delay_s`` unless stopping, then while paused; True when processing may go
        on."""
        await wait_event(self._stopping, delay_s)
        while self.sub.paused and self._taking():  # a paused listener calls no handler
            await self.sub.wait_resumed(self.options.block_ms / 1000)
        return self._taking()

    async def _flush_if_old(self) -> None:
        if time.monotonic() - self._oldest > self.options.ack_interval_ms / 1000:
            await self.final_writes.shield(self.flush())

    def _retry_args(self, entry: Entry, message: Message, delay_s: float) -> list[Any]:
        """KEYS and ARGV of ``schedule_retry.lua`` (schedule the next attempt, XACK this one)."""
        fields = entry_args(
            message.raw,
            message.content_type,
            message.key,
            entry.fields.get(b"headers"),
            message.timestamp,
            attempt=message.attempt + 1,
            origin_id=message.origin_id or message.id,
        )
        return [
            self.retry_key,
            entry.source,
            self.redeliver_key,
            self.sub.group,
            entry.id,
            int(delay_s * 1000),
            encode_envelope(fields),
        ]

    async def _dead_letter(
        self, entry: Entry, reason: str, error: BaseException | str, attempts: int
    ) -> None:
        self.sub.record_error(error if isinstance(error, BaseException) else ValueError(error))
        self.log.error(
            "entry %s dead-lettered (%s) after %d attempt(s): %s",
            entry.id.decode(),
            reason,
            attempts,
            error,
        )
        await self.final_writes.shield(
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
        self.sub.dead_lettered += 1  # counted once written: a failed write leaves it pending
        self.metrics.dead_lettered(self.labels, reason)
