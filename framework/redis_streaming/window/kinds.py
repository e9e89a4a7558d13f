"""The window kinds: which windows a record belongs to, when each closes, what it holds.

Each kind keeps the windows of one key as one plain value (lists and ints, stored with the
state codec in the window operator's store), and answers three questions:

- ``add``: a record at event time ``ts`` arrives while the partition's watermark is ``wm``:
  is it late (every window it belongs to has closed)? Which windows did it open or update?
- ``close``: the watermark reached ``wm``: which windows close now (their final results)?
- ``next_close``: when does the next of the key's windows close (its timer)?

A window ``[start, end)`` of a time-based kind closes when ``wm >= end + grace`` (session and
sliding windows: see their classes). Aggregator states are folded with ``add``/``add_at`` and,
for sessions and sliding windows, combined with ``merge``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from redis_streaming.errors import InvalidArgument

__all__ = ["Count", "Hopping", "Session", "Sliding", "Tumbling", "Window", "WindowKind", "ms"]

Window = tuple[int, int, Any]  # (start, end, aggregator state)
Fold = Callable[[Any, Any, int], Any]  # (state, value, ts) -> state


def ms(value: float | timedelta, what: str, *, positive: bool = True) -> int:
    """A duration (seconds or ``timedelta``) in whole milliseconds; raises
    :class:`InvalidArgument` when it is negative (or zero, when ``positive``)."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise InvalidArgument(f"{what} must be seconds or a timedelta, got {value!r}")
    millis = round(seconds * 1000)
    if millis < 0 or (positive and millis == 0):
        bound = "positive" if positive else "0 or more"
        raise InvalidArgument(f"{what} must be {bound} (at least 1 ms), got {value!r}")
    return millis


class WindowKind:
    """Base of the kinds; ``grace_ms`` is set by ``Stream.window``."""

    name = "window"
    needs_merge = False  # the aggregator must be mergeable (sessions, sliding windows)
    event_time = True  # closes by the watermark (count windows close by count)
    grace_ms = 0

    def add(
        self, state: Any, ts: int, value: Any, wm: int, initial: Callable[[], Any], fold: Fold
    ) -> tuple[Any, bool, list[Window], int]:
        """Returns ``(state, late, updated windows, windows opened)``."""
        raise NotImplementedError

    def close(
        self, state: Any, wm: int, merge: Callable[[Any, Any], Any]
    ) -> tuple[Any, list[Window]]:
        """Returns ``(state or None when nothing is left, windows closed)``."""
        raise NotImplementedError

    def next_close(self, state: Any) -> int | None:
        """The watermark at which the key's next window closes (None: none open)."""
        raise NotImplementedError


class Hopping(WindowKind):
    """Windows of ``size`` every ``slide`` (``[k*slide + offset, k*slide + offset + size)``),
    aligned to the epoch plus ``offset``: a record belongs to ``size / slide`` of them."""

    name = "hopping"

    def __init__(self, size_ms: int, slide_ms: int, offset_ms: int = 0) -> None:
        if slide_ms > size_ms:
            raise InvalidArgument(
                f"a hopping window's slide ({slide_ms} ms) must not exceed its size "
                f"({size_ms} ms): records between windows would belong to none"
            )
        self.size = size_ms
        self.slide = slide_ms
        self.offset = offset_ms % slide_ms

    def starts(self, ts: int) -> list[int]:
        """Starts of the windows holding ``ts``, oldest first."""
        last = ts - (ts - self.offset) % self.slide
        first = last - ((self.size - 1) // self.slide) * self.slide
        return [s for s in range(first, last + 1, self.slide) if s <= ts < s + self.size]

    def add(
        self, state: Any, ts: int, value: Any, wm: int, initial: Callable[[], Any], fold: Fold
    ) -> tuple[Any, bool, list[Window], int]:
        windows: list[list[Any]] = state or []
        by_start = {w[0]: w for w in windows}
        updated: list[Window] = []
        opened = 0
        for start in self.starts(ts):
            end = start + self.size
            if end + self.grace_ms <= wm:
                continue  # this window has closed: the record is late for it
            w = by_start.get(start)
            if w is None:
                w = [start, end, initial()]
                windows.append(w)
                opened += 1
            w[2] = fold(w[2], value, ts)
            updated.append((start, end, w[2]))
        if opened:
            windows.sort(key=lambda w: w[0])
        return windows, not updated, updated, opened

    def close(
        self, state: Any, wm: int, merge: Callable[[Any, Any], Any]
    ) -> tuple[Any, list[Window]]:
        closed = [(w[0], w[1], w[2]) for w in state if w[1] + self.grace_ms <= wm]
        left = [w for w in state if w[1] + self.grace_ms > wm]
        return left or None, closed

    def next_close(self, state: Any) -> int | None:
        return min(w[1] for w in state) + self.grace_ms if state else None


class Tumbling(Hopping):
    """Back-to-back windows of ``size`` aligned to the epoch plus ``offset``: ``start = ts - (ts
    - offset) % size``."""

    name = "tumbling"

    def __init__(self, size_ms: int, offset_ms: int = 0) -> None:
        super().__init__(size_ms, size_ms, offset_ms)

    def add(
        self, state: Any, ts: int, value: Any, wm: int, initial: Callable[[], Any], fold: Fold
    ) -> tuple[Any, bool, list[Window], int]:
        # Hopping.add with its one window: no list of starts, no index of the key's windows.
        start = ts - (ts - self.offset) % self.size
        end = start + self.size
        windows: list[list[Any]] = state or []
        if end + self.grace_ms <= wm:
            return windows, True, [], 0
        for w in windows:
            if w[0] == start:
                w[2] = fold(w[2], value, ts)
                return windows, False, [(start, end, w[2])], 0
        w = [start, end, initial()]
        windows.append(w)
        w[2] = fold(w[2], value, ts)
        if len(windows) > 1:
            windows.sort(key=lambda w: w[0])
        return windows, False, [(start, end, w[2])], 1

    def next_close(self, state: Any) -> int | None:
        # The windows are kept in start order, and all have one size: the first ends first.
        return state[0][1] + self.grace_ms if state else None


class Session(WindowKind):
    """Per key, records closer than ``gap`` (``<=``) in event time form one session ``[first
    ts, last ts]``; a record that bridges two sessions merges them (their aggregator states
    are merged). A session closes when ``wm >= last ts + gap + grace``; a record is late when
    ``ts + grace <= wm`` (so it can never join a session that has closed)."""

    name = "session"
    needs_merge = True

    def __init__(self, gap_ms: int) -> None:
        self.gap = gap_ms

    def add(
        self, state: Any, ts: int, value: Any, wm: int, initial: Callable[[], Any], fold: Fold
    ) -> tuple[Any, bool, list[Window], int]:
        sessions: list[list[Any]] = state or []
        if ts + self.grace_ms <= wm:
            return sessions or None, True, [], 0
        touching = [s for s in sessions if s[0] - self.gap <= ts <= s[1] + self.gap]
        if not touching:
            new = [ts, ts, fold(initial(), value, ts)]
            sessions.append(new)
            sessions.sort(key=lambda s: s[0])
            return sessions, False, [(ts, ts, new[2])], 1
        merged = touching[0]
        for other in touching[1:]:
            merged[2] = self._merge(merged[2], other[2])
            merged[0] = min(merged[0], other[0])
            merged[1] = max(merged[1], other[1])
            sessions.remove(other)
        merged[0] = min(merged[0], ts)
        merged[1] = max(merged[1], ts)
        merged[2] = fold(merged[2], value, ts)
        return sessions, False, [(merged[0], merged[1], merged[2])], 0

    _merge: Callable[[Any, Any], Any]

    def bind_merge(self, merge: Callable[[Any, Any], Any]) -> None:
        """The aggregator's ``merge`` (set when the window operator is built)."""
        self._merge = merge

    def close(
        self, state: Any, wm: int, merge: Callable[[Any, Any], Any]
    ) -> tuple[Any, list[Window]]:
        limit = self.gap + self.grace_ms
        closed = [(s[0], s[1], s[2]) for s in state if s[1] + limit <= wm]
        left = [s for s in state if s[1] + limit > wm]
        return left or None, closed

    def next_close(self, state: Any) -> int | None:
        return min(s[1] for s in state) + self.gap + self.grace_ms if state else None


class Sliding(WindowKind):
    """Kafka Streams' sliding windows of ``size`` (both bounds inclusive): for each record at
    ``t`` the window ``[t - size, t]``, and ``[t + 1, t + 1 + size]`` when a later record falls
    in it; each distinct window once, holding every record in its bounds. A window closes when
    ``wm >= end + grace``; a record is late when ``t + grace <= wm``. The key's records are kept
    (as single-record aggregator states, merged per window) until no open window can hold
    them."""

    name = "sliding"
    needs_merge = True

    def __init__(self, size_ms: int) -> None:
        self.size = size_ms

    def _windows(self, times: list[int]) -> list[tuple[int, int]]:
        bounds = {(t - self.size, t) for t in times}
        ordered = sorted(times)
        for i, t in enumerate(ordered):
            nxt = next((u for u in ordered[i + 1 :] if u > t), None)
            if nxt is not None and nxt <= t + 1 + self.size:
                bounds.add((t + 1, t + 1 + self.size))
        return sorted(bounds, key=lambda b: (b[1], b[0]))

    def _aggregate(
        self, records: list[list[Any]], start: int, end: int, merge: Callable[[Any, Any], Any]
    ) -> Any:
        acc: Any = None
        for t, single in records:
            if start <= t <= end:
                acc = single if acc is None else merge(acc, single)
        return acc

    def add(
        self, state: Any, ts: int, value: Any, wm: int, initial: Callable[[], Any], fold: Fold
    ) -> tuple[Any, bool, list[Window], int]:
        state = state or {"r": [], "e": None}
        if ts + self.grace_ms <= wm:
            return state if state["r"] else None, True, [], 0
        before = set(self._windows([t for t, _ in state["r"]]))
        state["r"].append([ts, fold(initial(), value, ts)])
        state["r"].sort(key=lambda r: r[0])
        after = self._windows([t for t, _ in state["r"]])
        updated = [
            (s, e, self._aggregate(state["r"], s, e, self._merge)) for s, e in after if s <= ts <= e
        ]
        return state, False, updated, len(set(after) - before)

    _merge: Callable[[Any, Any], Any]

    def bind_merge(self, merge: Callable[[Any, Any], Any]) -> None:
        """The aggregator's ``merge`` (set when the window operator is built)."""
        self._merge = merge

    def close(
        self, state: Any, wm: int, merge: Callable[[Any, Any], Any]
    ) -> tuple[Any, list[Window]]:
        done = state["e"]
        closed = [
            (s, e, self._aggregate(state["r"], s, e, merge))
            for s, e in self._windows([t for t, _ in state["r"]])
            if e + self.grace_ms <= wm and (done is None or e > done)
        ]
        if closed:
            state["e"] = closed[-1][1]
        # A record can only be in windows ending at most size + 1 after it; once those closed,
        # no open window holds it.
        state["r"] = [r for r in state["r"] if r[0] + 1 + self.size + self.grace_ms > wm]
        return (state if state["r"] else None), closed

    def next_close(self, state: Any) -> int | None:
        done = state["e"]
        ends = [e for _, e in self._windows([t for t, _ in state["r"]]) if done is None or e > done]
        return min(ends) + self.grace_ms if ends else None


class Count(WindowKind):
    """Windows by count per key, in arrival order: ``size`` records each, a new one every
    ``slide`` records (``slide == size``: tumbling). A window closes when it is full; there is
    no lateness. The window's start and end are the indexes of its first record and of the
    one after its last, counted per key from 0."""

    name = "count"
    event_time = False

    def __init__(self, size: int, slide: int | None = None) -> None:
        slide = size if slide is None else slide
        for what, n in (("size", size), ("slide", slide)):
            if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
                raise InvalidArgument(f"a count window's {what} must be a positive int, got {n!r}")
        if slide > size:
            raise InvalidArgument(
                f"a count window's slide ({slide}) must not exceed its size ({size})"
            )
        self.size = size
        self.slide = slide

    def add(
        self, state: Any, ts: int, value: Any, wm: int, initial: Callable[[], Any], fold: Fold
    ) -> tuple[Any, bool, list[Window], int]:
        state = state or {"i": 0, "w": []}
        i = state["i"]
        opened = 0
        if i % self.slide == 0:
            state["w"].append([i, initial()])
            opened = 1
        updated = []
        for w in state["w"]:
            w[1] = fold(w[1], value, ts)
            updated.append((w[0], i + 1, w[1]))
        state["i"] = i + 1
        return state, False, updated, opened

    def close(
        self, state: Any, wm: int, merge: Callable[[Any, Any], Any]
    ) -> tuple[Any, list[Window]]:
        i = state["i"]
        closed = [(w[0], w[0] + self.size, w[1]) for w in state["w"] if w[0] + self.size <= i]
        state["w"] = [w for w in state["w"] if w[0] + self.size > i]
        return state, closed

    def next_close(self, state: Any) -> int | None:
        return None
