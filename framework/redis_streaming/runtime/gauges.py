"""The runtime's observable gauges: state keys per store and partition, and the outbox
backlog of each task's forwarder (Redis Cluster), read from what the tasks last saw, with no
I/O in the collecting thread."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from opentelemetry.metrics import CallbackOptions, Observation

from redis_streaming.metrics import Metrics

if TYPE_CHECKING:
    from redis_streaming.runtime.shared import StageShared

__all__ = ["FORWARDER_BACKLOG", "STATE_KEYS", "TIMERS", "WATERMARK_LAG", "watch"]

STATE_KEYS = "redis_streaming.runtime.state.keys"
TIMERS = "redis_streaming.runtime.timers.pending"
WATERMARK_LAG = "redis_streaming.runtime.watermark.lag"
FORWARDER_BACKLOG = "redis_streaming.runtime.forwarder.backlog"


def _state_keys(shared: StageShared) -> Iterable[Observation]:
    stage = shared.stage
    for store, counts in shared.store_keys.items():
        for partition, n in counts.items():
            attrs: dict[str, str | int] = {
                "job": stage.job, "stage": stage.id, "store": store, "partition": partition,
            }  # fmt: skip
            yield Observation(n, attrs)


def _backlog(shared: StageShared) -> Iterable[Observation]:
    stage = shared.stage
    for partition, task in list(shared.tasks.items()):
        if task.forwarder is not None:
            attrs: dict[str, str | int] = {
                "job": stage.job, "stage": stage.id, "topic": stage.topic, "partition": partition,
            }  # fmt: skip
            yield Observation(task.forwarder.backlog, attrs)


def _task_attrs(shared: StageShared, partition: int) -> dict[str, str | int]:
    stage = shared.stage
    return {"job": stage.job, "stage": stage.id, "topic": stage.topic, "partition": partition}


def _timers(shared: StageShared) -> Iterable[Observation]:
    if shared.stage.timer_ops:
        for partition, task in list(shared.tasks.items()):
            pending = len(task.time.timer_index) + len(task.time.wall_index)
            yield Observation(pending, _task_attrs(shared, partition))


def _watermark_lag(shared: StageShared) -> Iterable[Observation]:
    if shared.stage.timer_ops:
        now = shared.clock.now_ms()
        for partition, task in list(shared.tasks.items()):
            if task.time.clock.max_ts is not None:
                lag = max(0.0, (now - task.time.clock.watermark) / 1000)
                yield Observation(lag, _task_attrs(shared, partition))


class _Gauges:
    """Registered once per :class:`Metrics` (a meter keeps the first registration of a name);
    the callbacks ask every live stage (weakly referenced) for its values."""

    def __init__(self, metrics: Metrics) -> None:
        self.sources: tuple[weakref.ref[StageShared], ...] = ()  # replaced, never mutated
        for name, read, unit, description in (
            (STATE_KEYS, _state_keys, "{key}", "Keys of a job's state store on a partition, "
             "as of the last commit there."),
            (FORWARDER_BACKLOG, _backlog, "{entry}", "Outputs in a task's outbox not yet "
             "forwarded (Redis Cluster)."),
            (TIMERS, _timers, "{timer}", "Timers of a task (window closes, process timers) "
             "not fired yet."),
            (WATERMARK_LAG, _watermark_lag, "s", "Wall clock minus a partition's watermark."),
        ):  # fmt: skip
            metrics.meter.create_observable_gauge(
                name, [self._callback(read)], unit=unit, description=description
            )

    def _callback(
        self, read: Callable[[StageShared], Iterable[Observation]]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            found: list[Observation] = []
            for ref in self.sources:
                shared = ref()
                if shared is not None:
                    found += read(shared)
            return found

        return observe


_gauges: weakref.WeakKeyDictionary[Metrics, _Gauges] = weakref.WeakKeyDictionary()


def watch(metrics: Metrics, shared: StageShared) -> None:
    """Report ``shared``'s values in ``metrics``' gauges while it lives."""
    gauges = _gauges.get(metrics)
    if gauges is None:
        gauges = _gauges[metrics] = _Gauges(metrics)
    gauges.sources = (*(r for r in gauges.sources if r() is not None), weakref.ref(shared))
