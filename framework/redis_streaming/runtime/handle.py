"""A job running in this process: its stages' coordinators, pause and resume, status, stop."""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis_streaming.cluster import is_cluster
from redis_streaming.errors import InvalidArgument
from redis_streaming.metrics import Metrics, default_metrics
from redis_streaming.mq.consume.consumer import default_consumer_id
from redis_streaming.mq.consume.coordinator import GroupCoordinator
from redis_streaming.mq.consume.leases import Leases
from redis_streaming.mq.consume.subscription import Subscription
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.topics import TopicMeta, TopicStore
from redis_streaming.runtime.admin import JobCatalog
from redis_streaming.runtime.gauges import watch
from redis_streaming.runtime.options import RuntimeOptions
from redis_streaming.runtime.shared import StageShared
from redis_streaming.runtime.task import StageTask
from redis_streaming.runtime.wallclock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from redis_streaming.runtime.job import Job

__all__ = ["JobHandle", "JobState", "JobStatus", "StageStatus"]

log = logging.getLogger(__name__)
_RUNNING: set[tuple[str, str]] = set()  # (namespace, job) of the jobs running in this process


class JobState(enum.StrEnum):
    """Lifecycle of a job in this process."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True)
class StageStatus:
    """One stage in this process: its group and input topic, the partitions it owns here,
    what it has processed, and its latest error."""

    group: str
    topic: str
    owned_partitions: list[int]
    records_in: int
    records_out: int
    batches: int
    dead_lettered: int
    last_commit_ms: int | None
    last_error: str | None
    store_keys: dict[str, int] = field(default_factory=dict)
    windows_opened: int = 0
    windows_closed: int = 0
    late_records: int = 0
    watermarks: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class JobStatus:
    """A job's state in this process and its stages."""

    name: str
    state: JobState
    stages: list[StageStatus]


def _noop(_: Any) -> None:  # the subscription's handler: tasks, not handlers, do the work
    return None


class JobHandle:
    """A job started by :meth:`Job.run`. ``stop()`` ends it gracefully: reading stops, the
    batch in progress commits (or stays pending for the next owner), leases are released."""

    def __init__(
        self,
        job: Job,
        redis: Any,
        options: MQOptions | None,
        runtime: RuntimeOptions | None,
        metrics: Metrics | None,
        consumer_id: str | None,
        clock: Clock | None = None,
    ) -> None:
        job.validate()
        self.job = job
        self.redis = redis
        self.options = options or MQOptions()
        self.runtime = runtime or RuntimeOptions()
        self.metrics = metrics or default_metrics()
        self.consumer_id = consumer_id or default_consumer_id()
        self.clock = clock or SYSTEM_CLOCK
        self.state = JobState.CREATED
        self.stages: list[StageShared] = []
        self.coordinators: list[GroupCoordinator] = []
        self._key = (self.options.namespace, job.name)

    async def start(self) -> None:
        """Create the job's topics and groups as needed and start its stages."""
        if self._key in _RUNNING:
            raise InvalidArgument(
                f"a job named {self.job.name!r} already runs in this process on namespace "
                f"{self.options.namespace!r}; give each job its own name"
            )
        _RUNNING.add(self._key)
        try:
            metas = await self._topics()
            await JobCatalog(self.redis, self.options).register(self.job)
            for stage in self.job.stages:
                sub = Subscription(
                    stage.topic, stage.group, _noop, id=stage.group, retry=self.options.retry,
                    start=self.runtime.start, batch_size=self.runtime.batch_size,
                )  # fmt: skip
                external, internal = stage.output_topics()
                self._check_co_partitioned(stage, metas)
                read = external | internal | {table.topic for table in stage.lookups}
                shared = StageShared(
                    self.redis, stage, self.options, self.runtime, self.consumer_id,
                    {t: metas[t] for t in read}, sub, self.metrics,
                    cluster=is_cluster(self.redis), clock=self.clock,
                )  # fmt: skip
                self.stages.append(shared)
                watch(self.metrics, shared)
                coordinator = GroupCoordinator(
                    self.redis, self.options, sub, self.consumer_id, metrics=self.metrics,
                    runner_factory=self._factory(shared),
                )  # fmt: skip
                self.coordinators.append(coordinator)
            for c in self.coordinators:
                c.sub.state = c.sub.state.RUNNING
                c.start()
            self.state = JobState.RUNNING
        except BaseException:
            _RUNNING.discard(self._key)
            raise

    def _check_co_partitioned(self, stage: Any, metas: dict[str, TopicMeta]) -> None:
        for table in stage.lookups:
            ours, theirs = metas[stage.topic].partitions, metas[table.topic].partitions
            if not table.global_ and ours != theirs:
                raise InvalidArgument(
                    f"job {self.job.name!r}: {stage.topic!r} ({ours} partitions) joins table "
                    f"{table.topic!r} ({theirs} partitions); a co-partitioned join needs the "
                    "same partition count: key_by the stream into the job (Job(partitions="
                    f"{theirs})) or make the table global (job.table(..., global_=True))"
                )

    @staticmethod
    def _factory(shared: StageShared) -> Any:
        def new_task(partition: int, leases: Leases) -> StageTask:
            task = StageTask(shared, partition, leases)
            shared.tasks[partition] = task
            return task

        return new_task

    async def _topics(self) -> dict[str, TopicMeta]:
        """The metadata of every topic the job reads or writes; internal topics are created
        with the job's partition count, others as producers create them."""
        store = TopicStore(self.redis, self.options)
        partitions = self.job.partitions or self.options.default_partitions
        metas: dict[str, TopicMeta] = {}
        for stage in self.job.stages:
            external, internal = stage.output_topics()
            if stage.internal:
                internal.add(stage.topic)
            else:
                external.add(stage.topic)
            for topic in sorted(internal - metas.keys()):
                _, metas[topic] = await store.create(topic, partitions)
            for topic in sorted(external - metas.keys()):
                metas[topic] = await store.require(topic)
        return metas

    def pause(self) -> None:
        """Process nothing from now on (the batch in progress commits); partitions stay
        owned, their leases renewed, until :meth:`resume`."""
        for c in self.coordinators:
            c.sub.pause()
        if self.state is JobState.RUNNING:
            self.state = JobState.PAUSED

    def resume(self) -> None:
        """Process again after :meth:`pause`."""
        for c in self.coordinators:
            c.sub.resume()
        if self.state is JobState.PAUSED:
            self.state = JobState.RUNNING

    def advance_watermark(self, watermark_ms: int) -> None:
        """Move the watermark of every partition this process runs to at least
        ``watermark_ms`` (epoch ms), as if records of that event time had come: windows that
        close by then close and event-time timers fire, each at the task's next idle read.
        Records older than the new watermark are late from then on. For tests
        (:class:`~redis_streaming.testing.JobTest`) and for closing the windows of inputs
        that have ended."""
        if isinstance(watermark_ms, bool) or not isinstance(watermark_ms, int):
            raise InvalidArgument(
                f"watermark_ms must be epoch milliseconds (an int), got {watermark_ms!r}"
            )
        for shared in self.stages:
            shared.watermark_floor = max(shared.watermark_floor, watermark_ms)

    def status(self) -> JobStatus:
        """What the job does in this process now."""
        stages = [
            StageStatus(
                group=s.stage.group,
                topic=s.stage.topic,
                owned_partitions=sorted(s.sub.owned),
                records_in=s.records_in,
                records_out=s.records_out,
                batches=s.batches,
                dead_lettered=s.dead_lettered,
                last_commit_ms=s.last_commit_ms,
                last_error=s.last_error,
                store_keys={name: sum(counts.values()) for name, counts in s.store_keys.items()},
                windows_opened=s.windows_opened,
                windows_closed=s.windows_closed,
                late_records=s.late_records,
                watermarks={
                    p: t.time.clock.watermark
                    for p, t in list(s.tasks.items())
                    if t.time.clock.max_ts is not None
                },
            )
            for s in self.stages
        ]
        return JobStatus(self.job.name, self.state, stages)

    async def stop(self, timeout_s: float | None = None) -> None:
        """Stop gracefully within ``timeout_s`` (default ``MQOptions.shutdown_timeout_s``)."""
        if self.state is JobState.STOPPED:
            return
        timeout = self.options.shutdown_timeout_s if timeout_s is None else timeout_s
        try:
            for c in self.coordinators:
                c.sub.resume()  # a paused task must get to its stop
            # Every stage at once: each waits for its read in progress (up to block_ms) and its
            # batch in progress; one after another, a job of n stages took n times as long.
            await asyncio.gather(*(c.stop(timeout) for c in self.coordinators))
            for c in self.coordinators:
                c.sub.state = c.sub.state.STOPPED
        finally:
            self.state = JobState.STOPPED
            _RUNNING.discard(self._key)

    async def __aenter__(self) -> JobHandle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
