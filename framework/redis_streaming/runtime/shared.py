"""What the tasks of one stage in one process share: their settings, output topics, counters
and the dead-letter writer. The job handle reads its status from here."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from redis_streaming.metrics import Metrics
from redis_streaming.metrics.batching import commit_sampler
from redis_streaming.mq.consume.subscription import Subscription
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.retry.dead_letter import DeadLetterWriter
from redis_streaming.mq.topics import TopicMeta
from redis_streaming.runtime.context import BatchRun
from redis_streaming.runtime.forwarding import ForwarderLoop
from redis_streaming.runtime.graph import Stage
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.runtime.options import RuntimeOptions
from redis_streaming.runtime.wallclock import SYSTEM_CLOCK, Clock
from redis_streaming.window.clock import NEVER

if TYPE_CHECKING:
    from redis_streaming.runtime.commit import CommitResult
    from redis_streaming.runtime.task import StageTask

__all__ = ["StageShared"]


class StageShared:
    """One stage of a running job in this process."""

    def __init__(
        self,
        redis: Any,
        stage: Stage,
        options: MQOptions,
        runtime: RuntimeOptions,
        consumer_id: str,
        targets: dict[str, TopicMeta],
        sub: Subscription,
        metrics: Metrics,
        *,
        cluster: bool,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.redis = redis
        self.stage = stage
        self.options = options
        self.runtime = runtime
        self.consumer_id = consumer_id
        self.targets = targets
        self.sub = sub
        self.metrics = metrics
        self.sampler = commit_sampler(metrics)  # which commits' duration and size are recorded
        self.cluster = cluster
        self.clock = clock
        self.watermark_floor = NEVER  # raised by JobHandle.advance_watermark
        self.keys = RuntimeKeys(options.namespace)
        self.table_partitions = {t.topic: targets[t.topic].partitions for t in stage.lookups}
        self.decoder = stage.decoder()
        self.dlq = DeadLetterWriter(redis, options)
        self.tasks: dict[int, StageTask] = {}
        self.records_in = 0
        self.records_out = 0
        self.batches = 0
        self.dead_lettered = 0
        self.windows_opened = 0
        self.windows_closed = 0
        self.late_records = 0
        self.last_commit_ms: int | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.store_keys: dict[str, dict[int, int]] = {name: {} for name in stage.stores}

    def record_error(self, exc: BaseException) -> None:
        """Remember the latest error (status, health)."""
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.last_error_at = time.time()
        self.sub.record_error(exc)

    async def dead_letter(
        self,
        partition: int,
        entry: tuple[bytes, dict[bytes, bytes]],
        reason: str,
        attempts: int,
        error: BaseException,
    ) -> None:
        """Write one entry to the input topic's dead letters, naming the job's stage as the
        group; its acknowledgement is part of the batch's commit."""
        self.record_error(error)
        await self.dlq.write(
            topic=self.stage.topic,
            partition=partition,
            group=self.stage.group,
            consumer=self.consumer_id,
            source_key=self.keys.mq.stream(self.stage.topic, partition),
            entry_id=entry[0].decode(),
            fields=entry[1],
            reason=reason,
            attempts=attempts,
            error=error,
            ack=False,
        )
        self.dead_lettered += 1
        self.metrics.runtime_dead_lettered(self.stage.job, self.stage.id, reason)

    def committed(
        self, task: StageTask, run: BatchRun, result: CommitResult, n: int, seconds: float
    ) -> None:
        """Count a committed batch of ``n`` entries."""
        self.records_in += n
        self.records_out += len(run.outputs)
        self.batches += 1
        self.last_commit_ms = int(time.time() * 1000)
        for store, count in result.store_keys.items():
            self.store_keys[store][task.partition] = count
        labels = task.labels
        task.counts.committed(n, len(run.outputs))  # added to the counters twice a second
        if self.sampler.sample():  # histograms: about 50 commits a second at most
            self.metrics.runtime_committed(labels, n, seconds)
        opened, closed, late = run.counts
        if opened or closed or late:
            self.windows_opened += opened
            self.windows_closed += closed
            self.late_records += late
            self.metrics.runtime_windows(labels, opened, closed, late)

    def forwarder_for(self, partition: int) -> ForwarderLoop | None:
        """The outbox forwarder of a task (Redis Cluster only)."""
        if not self.cluster:
            return None

        return ForwarderLoop(self, partition)
