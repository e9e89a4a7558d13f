"""Testing stream-processing jobs: a :class:`Job` run against a real throwaway server with a
:class:`ManualClock`; records sent, time moved on, outputs, state and dead letters read back,
each after the job has processed everything (docs/testing-jobs.md).

Determinism comes from four choices: one partition per topic (records are processed in the order
they were sent), a wall clock that moves only when the test says so, records sent between two
settles written in one transaction (each stage reads them in one batch when they fit its batch
size), and :meth:`JobTest.settle` waiting for a condition on the job's state, never for time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from datetime import datetime, timedelta
from typing import Any

from redis_streaming.cluster import is_cluster_url
from redis_streaming.embedded import RedisServer
from redis_streaming.errors import InvalidArgument
from redis_streaming.mq.admin.dead_letters import DeadLetterEntry, DeadLetters
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.producer import partition_for_key
from redis_streaming.mq.topics import TopicMeta, TopicStore
from redis_streaming.mq.wire.codec import encode_headers, encode_payload, entry_args, parse_fields
from redis_streaming.runtime.handle import JobHandle
from redis_streaming.runtime.job import Job
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.runtime.options import RuntimeOptions
from redis_streaming.runtime.reader import StateReader
from redis_streaming.runtime.records import ValueDecoder
from redis_streaming.state.codec import decode
from redis_streaming.testing.cluster import client_from_url
from redis_streaming.window.clock import NEVER

__all__ = ["START_MS", "JobTest", "ManualClock", "job_test"]

START_MS = 1_704_067_200_000
"""Where a :class:`ManualClock` starts by default: 2024-01-01T00:00:00Z in epoch milliseconds
(a whole day, so windows of any length that divides a day start there)."""

_POLL_S = 0.005  # between two looks at the job's state while settling


def _seconds(value: float | timedelta, what: str) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise InvalidArgument(
            f"{what} must be a duration of 0 or more (seconds or a timedelta), got {value!r}"
        )
    return float(seconds)


class ManualClock:
    """A wall clock that moves only when told to: pass it to ``Job.run(clock=...)`` and the
    job's idle timeouts, wall-clock timers, processing-time windows and state TTLs follow it.

    Starts at ``start_ms`` (epoch ms, default :data:`START_MS`); never goes back.
    """

    __slots__ = ("_now",)

    def __init__(self, start_ms: int = START_MS) -> None:
        if isinstance(start_ms, bool) or not isinstance(start_ms, int) or start_ms < 0:
            raise InvalidArgument(f"start_ms must be epoch milliseconds >= 0, got {start_ms!r}")
        self._now = start_ms

    def now_ms(self) -> int:
        """The clock's time in epoch milliseconds."""
        return self._now

    def advance(self, by: float | timedelta) -> int:
        """Move the clock on by ``by`` (seconds or a ``timedelta``, not negative); returns the
        new time. A running job sees it at its next batch or idle read: in a
        :class:`JobTest`, use ``await t.advance(wall=...)``, which settles around it."""
        self._now += round(_seconds(by, "advance(by)") * 1000)
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock(now_ms={self._now})"


class JobTest:
    """Runs ``job`` for a test: ``async with JobTest(job) as t:`` (or :func:`job_test`).

    The job runs in this process on ``url`` (a standalone server; default: a private
    ``RedisServer`` started for this test and stopped after it) in a namespace of its own, with
    ``partitions`` partitions for every topic it reads or writes (default 1: records are
    processed in the order sent), short leases, ``runtime`` options (default: batches of up to
    10,000, failed batches run again at once) and a :class:`ManualClock` (``clock``).

    Every read (:meth:`outputs`, :meth:`state`, :meth:`state_items`, :meth:`dead_letters`)
    first :meth:`settle`\\ s: it returns what the job has made of everything sent so far, at the
    clock's current time. On leaving the block the job stops and, on a given ``url``, the
    namespace's keys are deleted.
    """

    def __init__(
        self,
        job: Job,
        *,
        url: str | None = None,
        partitions: int = 1,
        runtime: RuntimeOptions | None = None,
        clock: ManualClock | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if not isinstance(job, Job):
            raise InvalidArgument(
                f"JobTest runs a Job, got {job!r}; pass build_job(), not the function"
            )
        job.validate()
        if (
            isinstance(partitions, bool)
            or not isinstance(partitions, int)
            or not 1 <= partitions <= 64
        ):
            raise InvalidArgument(f"partitions must be 1..64, got {partitions!r}")
        self.job = job
        self.url = url
        self.partitions = partitions
        self.runtime = runtime or RuntimeOptions(batch_size=10_000, retry_backoff_ms=0)
        self.clock = clock or ManualClock()
        self.timeout_s = _seconds(timeout_s, "timeout_s")
        self.namespace = f"jt{uuid.uuid4().hex[:12]}"
        self.options = MQOptions(
            namespace=self.namespace,
            default_partitions=partitions,
            lease_ttl_s=3.0,
            rebalance_interval_s=0.5,
            block_ms=10,
            shutdown_timeout_s=5.0,
        )
        self.keys = Keys(self.namespace)
        self._server: Any = None
        self._redis: Any = None
        self._handle: JobHandle | None = None
        self._topics: dict[str, TopicMeta] = {}
        self._rr: dict[str, itertools.count[int]] = {}
        self._unsent: list[tuple[str, list[Any]]] = []  # (stream, XADD fields) until settle()
        self._why = "not started"  # what the last look found unsettled
        self._deadline = 0.0  # of the wait in progress (loop time)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def handle(self) -> JobHandle:
        """The running job's handle (status, pause, ...)."""
        if self._handle is None:
            raise InvalidArgument("the job is not running: use `async with JobTest(job) as t:`")
        return self._handle

    @property
    def redis(self) -> Any:
        """The client the job runs on (bytes replies)."""
        if self._redis is None:
            raise InvalidArgument("the job is not running: use `async with JobTest(job) as t:`")
        return self._redis

    async def __aenter__(self) -> JobTest:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the server (unless ``url``), create the job's topics and start the job; returns
        once every stage's task runs on every partition."""
        try:
            url = self.url
            if url is None:
                self._server = await asyncio.to_thread(RedisServer().start)
                url = self._server.url
            elif is_cluster_url(url):
                raise InvalidArgument(
                    f"JobTest runs jobs on a standalone server, {url!r} is a cluster: pass a "
                    "redis:// URL (the plugin's rs_server_url), or none for a private server"
                )
            self._redis = client_from_url(url)
            store = TopicStore(self._redis, self.options)
            for topic in self._job_topics():
                _, self._topics[topic] = await store.create(topic, self.partitions)
            self._handle = await self.job.run(
                self._redis, self.options, runtime=self.runtime, clock=self.clock
            )
            await self._wait(self._started, "the job's tasks to start")
        except BaseException:
            await self.close()
            raise

    def _job_topics(self) -> list[str]:
        topics: set[str] = set()
        for stage in self.job.stages:
            external, internal = stage.output_topics()
            topics |= external | internal | {stage.topic}
        return sorted(topics)

    async def close(self) -> None:
        """Stop the job, delete the namespace's keys (on a given ``url``), stop the server."""
        try:
            if self._handle is not None:
                stopping = asyncio.ensure_future(self._handle.stop())
                while not stopping.done():  # the tasks end their blocked reads sooner (_turn)
                    await asyncio.wait({stopping}, timeout=_POLL_S)
                    if not stopping.done():
                        with contextlib.suppress(Exception):  # stop() deals with a lost server
                            await self._redis.ping()
                await stopping
            if self._redis is not None and self._server is None:
                match = f"{self.namespace}:*"
                async for key in self._redis.scan_iter(match=match, count=1000):
                    await self._redis.unlink(key)
        finally:
            self._handle = None
            if self._redis is not None:
                await self._redis.aclose()
                self._redis = None
            if self._server is not None:
                await asyncio.to_thread(self._server.close)
                self._server = None

    # -- sending and time ----------------------------------------------------------------

    async def send(
        self,
        topic: str,
        value: Any,
        *,
        key: str | None = None,
        timestamp: int | datetime | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send ``value`` to ``topic`` as a producer would, with event time ``timestamp``
        (epoch ms or an aware ``datetime``; default: the clock's time). Checked and encoded
        now; written at the next :meth:`settle` together with everything else sent since the
        last one, in the order sent."""
        if key is not None and not isinstance(key, str):
            raise InvalidArgument(f"key must be a str, got {type(key).__name__}; use str(key)")
        ts = self._timestamp(timestamp)
        raw, content_type = encode_payload(value)
        fields = entry_args(raw, content_type, key, encode_headers(headers), ts)
        meta = await self._meta(topic)
        if key is not None:
            partition = partition_for_key(key, meta.partitions)
        else:
            partition = next(self._rr.setdefault(topic, itertools.count())) % meta.partitions
        self._unsent.append((self.keys.stream(topic, partition), fields))

    def _timestamp(self, timestamp: int | datetime | None) -> int:
        if timestamp is None:
            return self.clock.now_ms()
        if isinstance(timestamp, datetime):
            if timestamp.tzinfo is None:
                raise InvalidArgument(
                    f"timestamp {timestamp!r} has no time zone; use an aware datetime "
                    "(tzinfo=timezone.utc) or epoch milliseconds"
                )
            return round(timestamp.timestamp() * 1000)
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise InvalidArgument(
                f"timestamp must be epoch milliseconds (an int) or a datetime, got {timestamp!r}"
            )
        return timestamp

    async def _meta(self, topic: str) -> TopicMeta:
        meta = self._topics.get(topic)
        if meta is None:
            meta = self._topics[topic] = await TopicStore(self.redis, self.options).require(topic)
        return meta

    async def advance(
        self, *, wall: float | timedelta | None = None, event: float | timedelta | None = None
    ) -> None:
        """Let time pass, then :meth:`settle`: first everything sent so far is processed at the
        current time; then the clock moves on by ``wall`` (idle timeouts, wall-clock timers,
        TTLs), and by ``event`` every partition's watermark moves to at least the job's
        highest watermark plus ``event`` (the clock's time when no record has come yet):
        windows that close by then emit, event-time timers fire. Seconds or ``timedelta``."""
        wall_s = None if wall is None else _seconds(wall, "wall")
        event_s = None if event is None else _seconds(event, "event")
        if wall_s is None and event_s is None:
            raise InvalidArgument("advance() needs wall=..., event=... or both")
        await self.settle()
        if wall_s is not None:
            self.clock.advance(wall_s)
        if event_s is not None:
            handle = self.handle
            marks = [s.watermark_floor for s in handle.stages]
            marks += [t.time.clock.watermark for s in handle.stages for t in s.tasks.values()]
            base = max(marks, default=NEVER)
            if base == NEVER:
                base = self.clock.now_ms()
            handle.advance_watermark(base + round(event_s * 1000))
        await self.settle()

    # -- settling ------------------------------------------------------------------------

    async def settle(self, timeout_s: float | None = None) -> None:
        """Write what was sent, then wait until the job has processed all of it and everything
        that follows from it (outputs of one stage read by the next), and no timer is due at
        the clock's time. Raises ``TimeoutError`` naming what is still pending after
        ``timeout_s`` (default: the ``JobTest``'s)."""
        await self._flush()
        await self._wait(self._settled, "the job to settle", timeout_s)

    async def _flush(self) -> None:
        if not self._unsent:
            return
        unsent, self._unsent = self._unsent, []
        pipe = self.redis.pipeline(transaction=True)  # one step: each stage reads one batch
        for stream, fields in unsent:
            pipe.execute_command("XADD", stream, "*", *fields)
        await pipe.execute()

    async def _wait(self, done: Any, what: str, timeout_s: float | None = None) -> None:
        # A deadline checked in the loop, not asyncio.timeout: on Python 3.11 redis-py's
        # socket timeouts (asyncio.wait_for) can swallow the cancellation that ends it.
        timeout = self.timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + timeout
        while True:  # a condition on Redis and on the tasks: polled, there is no event
            if await done():
                return
            if loop.time() >= self._deadline:
                break
            await self._turn()
        errors = [f"{s.stage.group}: {s.last_error}" for s in self.handle.stages if s.last_error]
        raise TimeoutError(
            f"JobTest: waited {timeout}s for {what}; {self._why}"
            + (f"; last errors: {'; '.join(errors)}" if errors else "")
        )

    async def _turn(self) -> None:
        """Wait a little. Redis ends a blocked read whose ``BLOCK`` has run out when its event
        loop turns, which an idle server does ten times a second: a command turns it at once,
        so a task's empty read (and its look at the clock after it) takes ``block_ms``."""
        await self.redis.ping()
        await asyncio.sleep(_POLL_S)

    def _tasks(self) -> dict[tuple[str, int], Any] | None:
        """Every stage's task on every partition, or None while one is missing."""
        found: dict[tuple[str, int], Any] = {}
        for shared in self.handle.stages:
            for p in range(self._topics[shared.stage.topic].partitions):
                task = shared.tasks.get(p)
                if task is None:
                    self._why = f"{shared.stage.group} has no task on partition {p} yet"
                    return None
                found[(shared.stage.group, p)] = task
        return found

    async def _started(self) -> bool:
        tasks = self._tasks()
        return tasks is not None and all(t.steps >= 2 for t in tasks.values())

    async def _settled(self) -> bool:
        """Quiet twice, with every task's loop having gone round in between and no commit
        seen in between: a commit whose reply a task was still handling at the first look
        (its timers and clock not updated yet) would have shown in the second."""
        first = await self._quiet()
        if first is None:
            return False
        tasks, batches = first
        steps = {k: t.steps for k, t in tasks.items()}
        self._why = "the tasks to go round their loop once more"
        loop = asyncio.get_running_loop()
        while True:
            if all(t.steps > steps[k] or t.done for k, t in tasks.items()):
                break
            if loop.time() >= self._deadline:
                return False
            await self._turn()
        second = await self._quiet()
        return second is not None and second[1] == batches

    async def _quiet(self) -> tuple[dict[tuple[str, int], Any], int] | None:
        """The tasks and the count of commits, when every entry of every stage's input is
        committed and no task has a timer due (or a watermark to move); else None."""
        tasks = self._tasks()
        if tasks is None:
            return None
        handle = self.handle
        batches = sum(s.batches for s in handle.stages)
        for (group, p), task in tasks.items():
            if task.stage.timer_ops and task.time.tick_watermark() is not None:
                self._why = f"{group} partition {p} has timers due or a watermark to move"
                return None
        pipe = self.redis.pipeline(transaction=False)
        for group, p in tasks:
            stream = self.keys.stream(tasks[(group, p)].stage.topic, p)
            pipe.xinfo_stream(stream)
            pipe.xinfo_groups(stream)
        replies = await pipe.execute(raise_on_error=False)
        for i, (group, p) in enumerate(tasks):
            info, groups = replies[2 * i], replies[2 * i + 1]
            if isinstance(info, Exception) or isinstance(groups, Exception):
                self._why = (
                    f"{group} partition {p}: {info if isinstance(info, Exception) else groups}"
                )
                return None
            last = _text(info["last-generated-id"])
            mine = [g for g in groups if _text(g["name"]) == group]
            if not mine:
                self._why = f"{group} partition {p}: no consumer group yet"
                return None
            pending, delivered = int(mine[0]["pending"]), _text(mine[0]["last-delivered-id"])
            if pending or delivered != last:
                self._why = (
                    f"{group} partition {p}: {pending} entries in progress, last read "
                    f"{delivered} of {last}"
                )
                return None
        return tasks, batches

    # -- reading -------------------------------------------------------------------------

    async def outputs(self, topic: str, value_type: Any = None, *, keys: bool = False) -> list[Any]:
        """Everything on ``topic`` after :meth:`settle`: its values in the order appended
        (partitions one after the other), decoded as ``value_type`` (a pydantic model, ...;
        default: as the payload is, a JSON object as a ``dict``), or ``(key, value)`` pairs
        with ``keys=True``. Raises for a topic that does not exist."""
        await self.settle()
        meta = await TopicStore(self.redis, self.options).get(topic)
        if meta is None:
            writes = sorted({t for s in self.job.stages for t in s.output_topics()[0]})
            raise InvalidArgument(f"there is no topic {topic!r}; the job writes to {writes}")
        decoder = ValueDecoder(value_type)
        found: list[Any] = []
        for p in range(meta.partitions):
            for _, fields in await self.redis.xrange(self.keys.stream(topic, p)):
                entry = parse_fields(fields)
                value = decoder.decode(entry)
                found.append((entry.key, value) if keys else value)
        return found

    def _store_stage(self, store: str) -> Any:
        for stage in self.job.stages:
            if store in stage.stores:
                return stage
        raise InvalidArgument(
            f"job {self.job.name!r} has no state store {store!r}; it has {sorted(self.job.stores)}"
        )

    async def state_items(self, store: str) -> dict[Any, Any]:
        """Every key and value of state store ``store`` after :meth:`settle`, as the job would
        read them at the clock's time (keys whose TTL has passed are left out)."""
        stage = self._store_stage(store)
        await self.settle()
        items = await StateReader(self.redis, self.options).items(self.job.name, store)
        now = self.clock.now_ms()
        runtime_keys = RuntimeKeys(self.namespace)
        for p in range(self._topics[stage.topic].partitions):
            ttl = runtime_keys.ttl(stage.topic, p, self.job.name, store)
            for field in await self.redis.zrangebyscore(ttl, "-inf", now):
                items.pop(decode(field), None)
        return items

    async def state(self, store: str, key: str | None) -> Any:
        """The value of ``key`` in state store ``store`` after :meth:`settle` (``None``: no
        state), as :meth:`state_items` gives it."""
        return (await self.state_items(store)).get(key)

    async def dead_letters(self) -> list[DeadLetterEntry]:
        """The dead letters of the job's stages after :meth:`settle`, oldest first per stage
        (``reason``, ``error``, ``decoded()`` the value)."""
        await self.settle()
        reader = DeadLetters(self.redis, self.options)
        found: list[DeadLetterEntry] = []
        for stage in self.job.stages:
            entries = await reader.list(stage.topic, group=stage.group, count=100_000)
            found += reversed(entries)
        return found


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def job_test(
    job: Job,
    *,
    url: str | None = None,
    partitions: int = 1,
    runtime: RuntimeOptions | None = None,
    clock: ManualClock | None = None,
    timeout_s: float = 10.0,
) -> JobTest:
    """``async with job_test(job) as t:``: a :class:`JobTest` (the same arguments)."""
    return JobTest(
        job, url=url, partitions=partitions, runtime=runtime, clock=clock, timeout_s=timeout_s
    )
