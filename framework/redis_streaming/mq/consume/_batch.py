"""Handling a batch of entries with one handler call, each member settled on its own."""

from __future__ import annotations

import dataclasses
import time

from redis_streaming.errors import BatchFailed
from redis_streaming.mq.consume._delivery import SKIPPED, Delivery, Entry
from redis_streaming.mq.wire.message import Message

__all__ = ["BatchDelivery"]

_Member = tuple[Entry, Message]
_Failure = tuple[Entry, Message, Exception]


class BatchDelivery(Delivery):
    """A :class:`Delivery` whose handler takes a list of messages.

    A batch is what one read (or one claim chunk) gave of a partition, in id order. Members
    that do not decode, or are poison, are dead-lettered first and left out; members the
    filter skips are acknowledged and left out; the others go to one handler call. Its outcome
    settles each member as a single entry's would: return acknowledges all; an exception fails
    all with it; :class:`~redis_streaming.BatchFailed` fails the members it names with their
    exceptions and acknowledges the others. A failed member is retried or dead-lettered per
    the retry policy with its own attempt count. Delayed mode schedules each retry (one round
    trip for the batch); blocking mode waits the longest backoff of the batch and calls the
    handler again with the members still to retry, in order.
    """

    async def handle_batch(self, entries: list[Entry]) -> None:
        """Process ``entries`` (one batch, in order) to their outcomes."""
        pending: list[_Member] = []
        for entry in entries:
            message = await self._message(entry)
            if message is not None:
                pending.append((entry, message))
        while pending:
            failures = await self._round(pending)
            pending = await self._settle_all(failures)
        await self._flush_if_old()

    async def _round(self, pending: list[_Member]) -> list[_Failure]:
        """Filter ``pending``, call the handler with what is left; the members that failed,
        in order (the others are acknowledged)."""
        members: list[_Member] = []
        failures: list[_Failure] = []
        for entry, message in pending:
            error = None if self.sub.filter is None else self._screen(message)
            if error is None:
                members.append((entry, message))
            elif error is SKIPPED:
                self.sub.filtered += 1
                self._queue(entry)
            else:
                failures.append((entry, message, error))
        if members:
            error = await self._call_batch([m for _, m in members])
            if error is None:
                self._succeeded(members)
            elif isinstance(error, BatchFailed):
                failures += self._split(members, error)
            else:
                failures += [(entry, message, error) for entry, message in members]
        if len(failures) > 1:  # the filter's failures and the handler's: back in batch order
            order = {id(entry): i for i, (entry, _) in enumerate(pending)}
            failures.sort(key=lambda f: order[id(f[0])])
        return failures

    def _succeeded(self, members: list[_Member]) -> None:
        self.sub.processed += len(members)
        for entry, _ in members:
            self._queue(entry)

    def _split(self, members: list[_Member], error: BatchFailed) -> list[_Failure]:
        """The members ``error`` names, with their exceptions; the others are acknowledged."""
        named = error.failures
        failed = [(e, m, named[m.id]) for e, m in members if m.id in named]
        self._succeeded([(e, m) for e, m in members if m.id not in named])
        unknown = set(named) - {m.id for _, m in members}
        if unknown:
            self.log.warning(
                "BatchFailed names %d id(s) that are not in the batch, ignored: %s",
                len(unknown),
                ", ".join(sorted(unknown)[:5]),
            )
        return failed

    async def _settle_all(self, failures: list[_Failure]) -> list[_Member]:
        """Dead-letter or retry each failed member; returns the members to call again now
        (blocking mode, once the longest of their backoffs has passed), else nothing."""
        again: list[_Member] = []
        wait_s = 0.0
        for entry, message, error in failures:
            delay_s = await self._settle(entry, message, error)
            if delay_s is not None:
                wait_s = max(wait_s, delay_s)
                again.append((entry, message))
        if self.sub.retry.mode == "delayed":
            if wait_s > 0:
                # Sent now, as a single entry's would be: the retry mover is woken once Redis
                # has confirmed the schedules.
                await self.final_writes.shield(self.flush())
            return []
        if again and not await self._wait(wait_s):
            return []  # stopping or lease lost: those members stay pending for the next owner
        return [(e, dataclasses.replace(m, attempt=m.attempt + 1)) for e, m in again]

    async def _call_batch(self, messages: list[Message]) -> Exception | None:
        """Run the handler on ``messages``; returns what it raised."""
        n = len(messages)
        self.sub.in_flight += n
        timed = self._durations.sample()
        start = time.perf_counter() if timed else 0.0
        try:
            await self.sub.call_batch(messages)
        except Exception as exc:
            if timed:
                self.metrics.handler_duration(self.labels.error, time.perf_counter() - start)
            return exc
        finally:
            self.sub.in_flight -= n
        if timed:
            self.metrics.handler_duration(self.labels.success, time.perf_counter() - start)
        return None
