"""Timers of one task: the in-memory mirror of its timer set in Redis, and a batch's changes.

A task's timers live in the ZSET ``rs:timers:{T:i}:<job>.<stage>`` (member = the encoded
``[operator, key, name]``, score = when it fires: a watermark for event-time timers, epoch ms
for wall-clock ones, in two sets). Only the lease holder changes them, so the task reads them
once when it starts and keeps them in memory; a batch's changes reach Redis in its commit (the
commit that runs a timer's effects also removes it: each timer fires exactly once).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

__all__ = ["BatchTimers", "TimerIndex"]

_GONE = -1


class TimerIndex:
    """Committed timers: member -> fire time, with a heap for the earliest."""

    __slots__ = ("_heap", "fires")

    def __init__(self, items: Iterable[tuple[bytes, int]] = ()) -> None:
        self.fires: dict[bytes, int] = dict(items)
        self._heap = [(at, m) for m, at in self.fires.items()]
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self.fires)

    def put(self, member: bytes, at: int) -> None:
        """Set (or move) a timer."""
        if self.fires.get(member) != at:
            self.fires[member] = at
            heapq.heappush(self._heap, (at, member))

    def remove(self, member: bytes) -> None:
        """Delete a timer (a no-op when absent)."""
        self.fires.pop(member, None)

    def due(self, now: int, limit: int) -> list[bytes]:
        """Up to ``limit`` members firing at or before ``now``, earliest first (not removed)."""
        found: list[bytes] = []
        heap = self._heap
        seen: set[bytes] = set()
        # Skim stale heap entries (moved or removed timers) off the top as they surface.
        while heap and heap[0][0] <= now and len(found) < limit:
            at, member = heap[0]
            if self.fires.get(member) != at or member in seen:
                heapq.heappop(heap)
                continue
            found.append(member)
            seen.add(member)
            heapq.heappop(heap)
        for member in found:  # still due until the commit removes them
            heapq.heappush(heap, (self.fires[member], member))
        return found

    def earliest(self) -> int | None:
        """The earliest fire time, or None."""
        heap = self._heap
        while heap and self.fires.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None


class BatchTimers:
    """A batch's timer changes over a :class:`TimerIndex`, with savepoints like the state's."""

    __slots__ = ("_journal", "changes", "index")

    def __init__(self, index: TimerIndex) -> None:
        self.index = index
        self.changes: dict[bytes, int] = {}  # member -> fire time, or _GONE
        self._journal: list[tuple[bytes, int | None]] = []

    def get(self, member: bytes) -> int | None:
        """The timer's fire time as the batch sees it."""
        at = self.changes.get(member)
        if at is None:
            return self.index.fires.get(member)
        return None if at == _GONE else at

    def set(self, member: bytes, at: int | None) -> None:
        """Set the timer to fire at ``at`` (None: delete it)."""
        self._journal.append((member, self.changes.get(member)))
        self.changes[member] = _GONE if at is None else at

    def savepoint(self) -> int:
        """A mark to :meth:`rollback` to."""
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        """Undo the changes since ``mark``."""
        while len(self._journal) > mark:
            member, previous = self._journal.pop()
            if previous is None:
                del self.changes[member]
            else:
                self.changes[member] = previous

    def committed(self) -> None:
        """The batch committed: apply its changes to the index."""
        for member, at in self.changes.items():
            if at == _GONE:
                self.index.remove(member)
            else:
                self.index.put(member, at)
        self.changes.clear()
        self._journal.clear()

    def due(self, now: int, limit: int) -> list[bytes]:
        """Up to ``limit`` timers firing at or before ``now`` as the batch sees them."""
        found = [m for m in self.index.due(now, limit) if m not in self.changes]
        found += [m for m, at in self.changes.items() if at != _GONE and at <= now]
        return found[:limit]

    def writes(self) -> tuple[list[tuple[bytes, int]], list[bytes]]:
        """``(timers to set with their times, timers to delete)`` for the commit."""
        put = [(m, at) for m, at in self.changes.items() if at != _GONE]
        gone = [m for m, at in self.changes.items() if at == _GONE]
        return put, gone
