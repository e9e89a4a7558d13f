"""The source runner: a leased singleton that copies a source into topics, exactly once."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from redis_streaming._redis.background import BackgroundLoop, Prefixed, log_retry
from redis_streaming._redis.backoff import Backoff
from redis_streaming.errors import ConfigurationError, InvalidArgument, SourceError
from redis_streaming.mq.consume.consumer import default_consumer_id
from redis_streaming.mq.keys import validate_name
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.scripts import script as mq_script
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.source.appender import Appender
from redis_streaming.source.base import Source, SourceRecord, check_position
from redis_streaming.source.scripts import script

__all__ = ["SourceRunner", "SourceStatus"]

log = logging.getLogger(__name__)
_ACQUIRE = mq_script("lease_acquire")
_RENEW = mq_script("lease_renew")
_RELEASE = mq_script("lease_release")
_COMMIT = script("source_commit")


@dataclass(slots=True, frozen=True)
class SourceStatus:
    """A runner's state (``standby``: another process holds the lease; ``running``; ``failed``:
    stopped by ``last_error``; ``stopped``), its stored position and counts since start."""

    name: str
    state: str
    owner: str
    position: str | None
    records_read: int
    records_appended: int
    dead_lettered: int
    last_error: str | None


class SourceRunner(BackgroundLoop):
    """Copies ``source`` into ``topic`` (or each record's own topic) under the name ``name``.

    One process at a time runs it: it holds the lease ``rs:srclease:{src:<name>}`` (TTL
    ``options.lease_ttl_s``, renewed every third of it); the others wait in standby and one
    takes over within about a TTL after the holder dies. Each loop reads the records after the
    stored position, appends each to its partition (``partition_for_key`` of its key) through a
    script that skips records at or below that partition's high-water mark for this source
    (exactly-once into the topic across crashes and takeovers), stores the batch's position
    (only while holding the lease), then calls ``source.ack(position)``.

    Passing errors (database or Redis down) close the source and retry with backoff.
    ``SourceError`` and ``ConfigurationError`` stop the runner: ``state`` becomes ``failed`` and
    :meth:`wait` raises the error.
    """

    def __init__(
        self,
        redis: Any,
        options: MQOptions | None,
        source: Source,
        topic: str | None,
        name: str,
        *,
        batch_size: int = 1000,
        poll_interval_s: float = 0.2,
        owner_id: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(source, Source):
            raise InvalidArgument(f"source must implement the Source protocol, got {source!r}")
        if batch_size < 1 or poll_interval_s < 0:
            raise InvalidArgument("batch_size must be >= 1 and poll_interval_s >= 0")
        self.options = options or MQOptions()
        self.name = validate_name(name, "source name")
        self.redis = redis
        self.source = source
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.owner = owner_id or default_consumer_id()
        keys = RuntimeKeys(self.options.namespace)
        self._lease = keys.source_lease(self.name)
        self._hash = keys.source(self.name)
        self.appender = Appender(
            redis, self.options, None if topic is None else validate_name(topic), self.name
        )
        self.log = Prefixed(log, f"source {self.name}")
        self.position: str | None = None
        self.state = "stopped"
        self.records_read = 0
        self.records_appended = 0
        self.fatal: BaseException | None = None
        self._held = False
        self._opened = False
        self._renew_at = 0.0

    def start(self) -> None:
        """Start the loop in a background task (it first waits for the lease)."""
        self.fatal = None
        self.state = "standby"
        self._launch(f"rs-source-{self.name}")

    async def stop(self) -> None:
        """Stop reading, close the source and give the lease up (the next process takes over
        at once)."""
        await self._end(0)
        await self._close()
        if self._held:
            self._held = False
            try:
                await _RELEASE(self.redis, [self._lease], [self.owner])
            except Exception as exc:  # it expires by itself
                self.log.warning("could not release the lease (%s)", exc)
        if self.state != "failed":
            self.state = "stopped"

    async def wait(self) -> None:
        """Wait until the loop ends (after :meth:`stop`, or a fatal error, which is raised)."""
        task = self._task
        if task is not None:
            await task
        if self.fatal is not None:
            raise self.fatal

    def status(self) -> SourceStatus:
        """The runner's state and counts."""
        error = self.fatal or self.last_error
        return SourceStatus(
            self.name, self.state, self.owner, self.position, self.records_read,
            self.records_appended, self.appender.dead_lettered,
            None if error is None else f"{type(error).__name__}: {error}",
        )  # fmt: skip

    async def _run(self) -> None:
        prefixed = self.log

        async def on_error(exc: Exception, backoff: Backoff) -> float:
            await self._close()
            if isinstance(exc, SourceError | ConfigurationError):
                self.fatal = exc
                self.state = "failed"
                prefixed.error("stopped: %s", exc)
                self._stopping.set()
                return 0.0
            wait = backoff.next_delay()
            log_retry(prefixed, exc, wait)
            return wait

        await self._supervise(self._step, Backoff(), on_error)

    async def _close(self) -> None:
        if self._opened:
            self._opened = False
            try:
                await self.source.close()
            except Exception as exc:
                self.log.warning("closing the source failed (%s)", exc)

    async def _step(self) -> float | None:
        ttl_ms = int(self.options.lease_ttl_s * 1000)
        if not self._held:
            if not int(await _ACQUIRE(self.redis, [self._lease], [self.owner, ttl_ms])):
                self.state = "standby"
                return self.options.lease_ttl_s / 3
            self._held = True
            self._renew_at = time.monotonic() + self.options.lease_ttl_s / 3
            self.log.info("took the lease")
        elif time.monotonic() >= self._renew_at:
            if not int(await _RENEW(self.redis, [self._lease], [self.owner, ttl_ms])):
                return await self._lost()
            self._renew_at = time.monotonic() + self.options.lease_ttl_s / 3
        if not self._opened:
            position, meta = await self.redis.hmget(self._hash, "position", "meta")
            self.position = None if position is None else position.decode()
            self._opened = True  # a failed open is closed too (it may have connected)
            await self.source.open(self.position, None if meta is None else meta.decode())
            if self.position is not None:
                await self.source.ack(self.position)
        self.state = "running"
        return await self._copy()

    async def _lost(self) -> float:
        self.log.warning("lost the lease; standing by")
        self._held = False
        await self._close()
        self.state = "standby"
        return 0.0

    async def _copy(self) -> float:
        """One batch: read, append, store the position, acknowledge."""
        after = self.position
        batch = await self.source.read(after, self.batch_size)
        records = _new_records(batch.records, after)
        self.records_read += len(records)
        self.records_appended += await self.appender.append(records)
        reached = batch.position or (records[-1].position if records else None)
        if reached is not None and (after is None or check_position(reached) > after):
            meta = self.source.meta or ""
            now_ms = time.time_ns() // 10**6
            if not int(
                await _COMMIT(
                    self.redis, [self._lease, self._hash], [self.owner, reached, meta, now_ms]
                )
            ):
                return await self._lost()
            self.position = reached
            await self.source.ack(reached)
        return 0.0 if records else self.poll_interval_s


def _new_records(records: list[SourceRecord], after: str | None) -> list[SourceRecord]:
    """The records above ``after``, checked to be in strictly increasing position order."""
    last = after
    out = []
    for record in records:
        position = check_position(record.position)
        if last is not None and position <= last:
            if after is not None and position <= after:
                continue  # read again (the source resumed before the stored position)
            raise InvalidArgument(
                f"source positions must increase: {position!r} came after {last!r}"
            )
        out.append(record)
        last = position
    return out
