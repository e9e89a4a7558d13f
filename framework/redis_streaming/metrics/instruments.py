"""The framework's OpenTelemetry instruments, in one class.

Only the OpenTelemetry API is used: without an SDK (a ``MeterProvider`` set by the application)
every call is a cheap no-op. Attribute dicts are built once per partition (and outcome or
reason) and reused. The consumer's hot path records through
:mod:`redis_streaming.metrics.batching`, which says why.
"""

from __future__ import annotations

from opentelemetry import metrics
from opentelemetry.metrics import Meter
from opentelemetry.util.types import Attributes

from redis_streaming._version import __version__

__all__ = ["Metrics", "PartitionLabels", "default_metrics"]

_METER_NAME = "redis_streaming"


class PartitionLabels:
    """Attribute sets of one partition of one subscription on one consumer, built once.

    ``base`` holds ``topic``, ``partition``, ``group`` and ``consumer``; :meth:`reason` and
    :meth:`outcome` add ``reason`` or ``outcome`` to it (cached per value).
    """

    __slots__ = ("_outcomes", "_reasons", "base", "error", "success")

    def __init__(self, topic: str, partition: int, group: str, consumer: str) -> None:
        self.base: dict[str, str | int] = {
            "topic": topic,
            "partition": partition,
            "group": group,
            "consumer": consumer,
        }
        self._reasons: dict[str, Attributes] = {}
        self._outcomes: dict[str, Attributes] = {}
        self.success = self.outcome("success")
        self.error = self.outcome("error")

    def reason(self, reason: str) -> Attributes:
        """``base`` plus ``reason`` (a dead-letter reason)."""
        attrs = self._reasons.get(reason)
        if attrs is None:
            attrs = self._reasons[reason] = {**self.base, "reason": reason}
        return attrs

    def outcome(self, outcome: str) -> Attributes:
        """``base`` plus ``outcome`` (a handler call's outcome)."""
        attrs = self._outcomes.get(outcome)
        if attrs is None:
            attrs = self._outcomes[outcome] = {**self.base, "outcome": outcome}
        return attrs


class Metrics:
    """The framework's counters and handler-duration histogram, created from ``meter`` (default:
    the global meter provider's ``redis_streaming`` meter, so an SDK installed later is picked
    up). Producers and consumers record into one (default: :func:`default_metrics`).

    Names, labels, units and what each counts: docs/metrics.md, "Instruments"; how the consumer
    batches and samples its records: "How they are recorded" there.
    """

    def __init__(self, meter: Meter | None = None) -> None:
        if meter is None:
            meter = metrics.get_meter(_METER_NAME, __version__)
        self.meter = meter
        self._produced = meter.create_counter(
            "redis_streaming.messages.produced", "{message}", "Messages written by producers."
        )
        self._consumed = meter.create_counter(
            "redis_streaming.messages.consumed", "{message}", "Entries taken for handling."
        )
        self._acked = meter.create_counter(
            "redis_streaming.messages.acked", "{message}", "Entries acknowledged after success."
        )
        self._retried = meter.create_counter(
            "redis_streaming.messages.retried", "{message}", "Retries scheduled or performed."
        )
        self._dead_lettered = meter.create_counter(
            "redis_streaming.messages.dead_lettered",
            "{message}",
            "Entries written to the dead-letter stream.",
        )
        self._duration = meter.create_histogram(
            "redis_streaming.handler.duration", "s", "Wall time of handler calls."
        )
        self._topic_labels: dict[tuple[str, int], Attributes] = {}
        self._rt_in = meter.create_counter(
            "redis_streaming.runtime.records.in", "{record}", "Entries a job's stage committed."
        )
        self._rt_out = meter.create_counter(
            "redis_streaming.runtime.records.out",
            "{record}",
            "Outputs a job's stage appended in its commits (to topics and internal topics).",
        )
        self._rt_commit = meter.create_histogram(
            "redis_streaming.runtime.commit.duration", "s", "Wall time of a batch's commit call."
        )
        self._rt_batch = meter.create_histogram(
            "redis_streaming.runtime.batch.size", "{record}", "Entries per committed batch."
        )
        self._rt_opened = meter.create_counter(
            "redis_streaming.runtime.windows.opened", "{window}", "Windows a job's stage opened."
        )
        self._rt_closed = meter.create_counter(
            "redis_streaming.runtime.windows.closed",
            "{window}",
            "Windows a job's stage closed (count windows: filled).",
        )
        self._rt_late = meter.create_counter(
            "redis_streaming.runtime.late_records",
            "{record}",
            "Records that arrived after every window they belong to had closed.",
        )
        self._rt_dead = meter.create_counter(
            "redis_streaming.runtime.dead_lettered",
            "{record}",
            "Entries a job's stage wrote to the dead letters.",
        )

    def labels(self, topic: str, partition: int, group: str, consumer: str) -> PartitionLabels:
        """The attribute sets for one partition worker; build once and keep."""
        return PartitionLabels(topic, partition, group, consumer)

    def produced(self, topic: str, partition: int, n: int) -> None:
        """Count ``n`` messages written to ``partition`` of ``topic``."""
        attrs = self._topic_labels.get((topic, partition))
        if attrs is None:
            attrs = self._topic_labels[(topic, partition)] = {
                "topic": topic,
                "partition": partition,
            }
        self._produced.add(n, attrs)

    def consumed(self, labels: PartitionLabels, n: int) -> None:
        """Count ``n`` entries taken for handling."""
        self._consumed.add(n, labels.base)

    def acked(self, labels: PartitionLabels, n: int) -> None:
        """Count ``n`` acknowledged entries."""
        self._acked.add(n, labels.base)

    def retried(self, labels: PartitionLabels, n: int = 1) -> None:
        """Count ``n`` retries."""
        self._retried.add(n, labels.base)

    def dead_lettered(self, labels: PartitionLabels, reason: str, n: int = 1) -> None:
        """Count ``n`` dead-lettered entries for ``reason``."""
        self._dead_lettered.add(n, labels.reason(reason))

    def runtime_labels(self, job: str, stage: str, topic: str, partition: int) -> Attributes:
        """The attribute set of one task of a job (build once and keep)."""
        return {"job": job, "stage": stage, "topic": topic, "partition": partition}

    def runtime_records(self, attrs: Attributes, n: int, outputs: int) -> None:
        """Count ``n`` entries committed by a job's task and the ``outputs`` they appended
        (the tasks add their counts about twice a second: :class:`TaskCounts`)."""
        if n:
            self._rt_in.add(n, attrs)
        if outputs:
            self._rt_out.add(outputs, attrs)

    def runtime_committed(self, attrs: Attributes, n: int, seconds: float) -> None:
        """Record one committed batch of ``n`` entries: its duration and size (for a sample of
        the commits: see :func:`~redis_streaming.metrics.batching.commit_sampler`)."""
        self._rt_commit.record(seconds, attrs)
        self._rt_batch.record(n, attrs)

    def runtime_windows(self, attrs: Attributes, opened: int, closed: int, late: int) -> None:
        """Count windows opened and closed, and late records, of one committed batch."""
        if opened:
            self._rt_opened.add(opened, attrs)
        if closed:
            self._rt_closed.add(closed, attrs)
        if late:
            self._rt_late.add(late, attrs)

    def runtime_dead_lettered(self, job: str, stage: str, reason: str) -> None:
        """Count one entry a job's stage dead-lettered for ``reason``."""
        self._rt_dead.add(1, {"job": job, "stage": stage, "reason": reason})

    def handler_duration(self, attrs: Attributes, seconds: float) -> None:
        """Record one handler call; ``attrs`` is ``labels.success``, ``labels.error`` or
        ``labels.outcome(...)``."""
        self._duration.record(seconds, attrs)


_default: Metrics | None = None


def default_metrics() -> Metrics:
    """The process-wide :class:`Metrics` on the global meter provider (created on first use)."""
    global _default
    if _default is None:
        _default = Metrics()
    return _default
