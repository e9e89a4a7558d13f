"""Keeping the OpenTelemetry SDK off the consumer's hot path.

With an SDK installed, one counter ``add`` or histogram ``record`` costs 10 to 40 µs in CPython
(most of it attribute handling), as much as the rest of the framework's work on a message. So
partition workers add their message counts to the counters about twice a second
(:class:`PartitionCounts`) and record the durations of a sample of handler calls when there
are more than 200 a second (:class:`DurationSampler`). Without an SDK both cost next to nothing.
"""

from __future__ import annotations

import math
import random
import time
import weakref
from collections.abc import Callable

from opentelemetry.util.types import Attributes

from redis_streaming.metrics.instruments import Metrics, PartitionLabels

__all__ = [
    "DurationSampler",
    "PartitionCounts",
    "TaskCounts",
    "commit_sampler",
    "duration_sampler",
]


class _PeriodicCounts:
    """Counts kept in plain integers and added to their counters by :meth:`flush_if_due` (which
    the owner calls on every turn of its loop, at least every ``block_ms``) once ``interval_s``
    has passed since the last addition, and by :meth:`flush` when the owner ends."""

    __slots__ = ("_due", "interval_s", "metrics")

    def __init__(self, metrics: Metrics, interval_s: float) -> None:
        self.metrics = metrics
        self.interval_s = interval_s
        self._due = 0.0

    def _pending(self) -> bool:
        raise NotImplementedError

    def _add(self) -> None:
        """Add the counts to the counters and reset them."""
        raise NotImplementedError

    def flush_if_due(self) -> None:
        """:meth:`flush` if ``interval_s`` has passed since the last time."""
        if self._pending() and time.monotonic() >= self._due:
            self.flush()

    def flush(self) -> None:
        """Add what was counted to the counters now."""
        self._due = time.monotonic() + self.interval_s
        if self._pending():
            self._add()


class PartitionCounts(_PeriodicCounts):
    """The ``consumed`` and ``acked`` counts of one partition worker (see
    :class:`_PeriodicCounts` for when they reach the counters)."""

    __slots__ = ("_acked", "_consumed", "labels")

    def __init__(self, metrics: Metrics, labels: PartitionLabels, interval_s: float = 0.5):
        super().__init__(metrics, interval_s)
        self.labels = labels
        self._consumed = 0
        self._acked = 0

    def consumed(self, n: int) -> None:
        """Count ``n`` entries taken for handling."""
        self._consumed += n

    def acked(self, n: int) -> None:
        """Count ``n`` entries whose acknowledgement Redis confirmed."""
        self._acked += n

    def _pending(self) -> bool:
        return bool(self._consumed or self._acked)

    def _add(self) -> None:
        if self._consumed:
            self.metrics.consumed(self.labels, self._consumed)
            self._consumed = 0
        if self._acked:
            self.metrics.acked(self.labels, self._acked)
            self._acked = 0


class TaskCounts(_PeriodicCounts):
    """The records a job's task committed and the outputs they appended (see
    :class:`_PeriodicCounts` for when they reach the counters)."""

    __slots__ = ("_in", "_out", "labels")

    def __init__(self, metrics: Metrics, labels: Attributes, interval_s: float = 0.5):
        super().__init__(metrics, interval_s)
        self.labels = labels
        self._in = 0
        self._out = 0

    def committed(self, n: int, outputs: int) -> None:
        """Count a committed batch of ``n`` entries that appended ``outputs``."""
        self._in += n
        self._out += outputs

    def _pending(self) -> bool:
        return bool(self._in or self._out)

    def _add(self) -> None:
        self.metrics.runtime_records(self.labels, self._in, self._out)
        self._in = self._out = 0


class DurationSampler:
    """Chooses the handler calls whose duration is recorded: every call while the process makes
    at most ``per_second`` of them a second; above that, about ``per_second`` a second, spaced
    by random gaps.

    Recording every call would halve the throughput of fast handlers (see the module's
    docstring). Whether a call is timed is decided before it runs, from the call rate so far and
    a random gap, so the recorded durations are an unbiased sample of all calls (outcomes
    included); exact counts are the ``messages.*`` counters. The rate is measured over the last
    second, or over the last ``per_second`` calls when they came sooner, so a burst is thinned
    within ``per_second`` calls. An untimed call costs two decrements.
    """

    __slots__ = ("_calls", "_clock", "_countdown", "_mean_gap", "_since", "per_second")

    def __init__(
        self, per_second: float = 200.0, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.per_second = per_second
        self._clock = clock
        self._calls = 0  # since _since
        self._since = -math.inf
        self._countdown = 0  # calls until the next timed one
        self._mean_gap = 1.0  # calls per timed call

    def sample(self) -> bool:
        """Count one call about to start; True when its duration should be recorded."""
        self._calls += 1
        self._countdown -= 1
        if self._countdown > 0:
            return False
        now = self._clock()
        elapsed = now - self._since
        if elapsed >= 1.0 or self._calls > self.per_second:
            self._mean_gap = max(1.0, self._calls / (self.per_second * elapsed))
            self._calls = 0
            self._since = now
        mean = self._mean_gap
        self._countdown = random.randint(1, round(2 * mean) - 1) if mean >= 1.5 else 1
        return True


_SAMPLERS: weakref.WeakKeyDictionary[Metrics, DurationSampler] = weakref.WeakKeyDictionary()


_COMMIT_SAMPLERS: weakref.WeakKeyDictionary[Metrics, DurationSampler] = weakref.WeakKeyDictionary()


def commit_sampler(metrics: Metrics) -> DurationSampler:
    """The sampler of ``metrics``' commit-duration and batch-size histograms: one budget per
    process (about 50 commits a second recorded, every commit below that), shared by every job
    task recording into them."""
    sampler = _COMMIT_SAMPLERS.get(metrics)
    if sampler is None:
        sampler = _COMMIT_SAMPLERS[metrics] = DurationSampler(per_second=50)
    return sampler


def duration_sampler(metrics: Metrics) -> DurationSampler:
    """The sampler of ``metrics``' handler-duration histogram: one budget per histogram,
    shared by every partition worker recording into it."""
    sampler = _SAMPLERS.get(metrics)
    if sampler is None:
        sampler = _SAMPLERS[metrics] = DurationSampler()
    return sampler
