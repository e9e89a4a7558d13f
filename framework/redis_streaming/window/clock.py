"""Event time of one partition: its watermark, and how a quiet partition's watermark moves on.

The watermark is the largest event time seen minus ``max_out_of_orderness``. A window
``[start, end)`` closes once the watermark reaches ``end + grace``. When the partition has
received nothing for ``idle_timeout``, its watermark advances with the wall clock from where the
last record left it (``max event time - max_out_of_orderness + time since that record``), so
windows of a quiet partition close too. Both values are persisted in every commit.
"""

from __future__ import annotations

__all__ = ["NEVER", "BatchClock", "PartitionClock"]

NEVER = -(2**62)  # the watermark before any record


class PartitionClock:
    """The committed event-time state of one task."""

    __slots__ = ("floor", "idle_ms", "last_record_wall", "max_ts", "ooo_ms")

    def __init__(
        self, ooo_ms: int, idle_ms: int | None, max_ts: int | None, floor: int, now_ms: int
    ) -> None:
        self.ooo_ms = ooo_ms
        self.idle_ms = idle_ms
        self.max_ts = max_ts
        self.floor = floor  # what idle advances (and restores) have raised the watermark to
        self.last_record_wall = now_ms

    @property
    def watermark(self) -> int:
        """The committed watermark."""
        base = NEVER if self.max_ts is None else self.max_ts - self.ooo_ms
        return max(base, self.floor)

    def idle_watermark(self, now_ms: int) -> int | None:
        """The watermark a quiet partition has reached by ``now_ms``, or None while it is not
        idle (or has never seen a record, or has no idle timeout)."""
        if self.idle_ms is None or self.max_ts is None:
            return None
        quiet = now_ms - self.last_record_wall
        if quiet < self.idle_ms:
            return None
        return max(self.watermark, self.max_ts - self.ooo_ms + quiet)


class BatchClock:
    """A batch's view of the clock: records advance it; savepoints undo a failed record's."""

    __slots__ = ("base", "floor", "max_ts")

    def __init__(self, base: PartitionClock) -> None:
        self.base = base
        self.max_ts = base.max_ts
        self.floor = base.floor

    @property
    def watermark(self) -> int:
        """The watermark as of the records run so far."""
        base = NEVER if self.max_ts is None else self.max_ts - self.base.ooo_ms
        return max(base, self.floor)

    def observe(self, ts: int) -> None:
        """A record with event time ``ts`` was processed."""
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts

    def advance_to(self, watermark: int) -> None:
        """Raise the watermark to at least ``watermark`` (idle partitions)."""
        self.floor = max(self.floor, watermark)

    def committed(self, now_ms: int, had_records: bool) -> None:
        """The batch committed: its clock is the partition's now."""
        self.base.max_ts = self.max_ts
        self.base.floor = self.floor
        if had_records:
            self.base.last_record_wall = now_ms
