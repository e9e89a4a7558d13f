"""The aggregators that keep values in an order: first, last and collect by event time, top_k by
a ranking key.

They store values as the state codec gives them back (tuples as lists, pydantic models and
dataclasses as dicts of their fields): extract plain fields with ``fn`` to keep states small.
Event times are the ``ts_ms`` of ``add_at``; ``add`` without one counts as arriving at the time
of the latest value kept, so plain ``add`` calls order by arrival.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from redis_streaming.aggregation.basic import Extracting
from redis_streaming.aggregation.protocol import Extractor, check_callable, int_in, plain

__all__ = ["Collect", "First", "Last", "TopK"]

_TS = itemgetter(0)


class First(Extracting):
    """The value with the earliest event time, the first to arrive among equal times; ``None``
    for no records (state: ``None`` or ``[ts_ms, value]``). ``merge(a, b)`` prefers ``a`` on a tie.
    """

    name = "first"

    def initial(self) -> list[Any] | None:
        return None

    def add_at(self, state: list[Any] | None, value: Any, ts_ms: int) -> list[Any] | None:
        if state is None or ts_ms < state[0]:
            return [ts_ms, plain(self.value(value))]
        return state

    def add(self, state: list[Any] | None, value: Any) -> list[Any] | None:
        return self.add_at(state, value, 0 if state is None else state[0])

    def merge(self, a: list[Any] | None, b: list[Any] | None) -> list[Any] | None:
        if a is None or b is None:
            return b if a is None else a
        return b if b[0] < a[0] else a

    def result(self, state: list[Any] | None) -> Any:
        return None if state is None else state[1]


class Last(Extracting):
    """The value with the latest event time, the last to arrive among equal times; ``None`` for
    no records (state: ``None`` or ``[ts_ms, value]``). ``merge(a, b)`` prefers ``b`` on a tie.
    """

    name = "last"

    def initial(self) -> list[Any] | None:
        return None

    def add_at(self, state: list[Any] | None, value: Any, ts_ms: int) -> list[Any] | None:
        if state is None or ts_ms >= state[0]:
            return [ts_ms, plain(self.value(value))]
        return state

    def add(self, state: list[Any] | None, value: Any) -> list[Any] | None:
        return self.add_at(state, value, 0 if state is None else state[0])

    def merge(self, a: list[Any] | None, b: list[Any] | None) -> list[Any] | None:
        if a is None or b is None:
            return b if a is None else a
        return a if a[0] > b[0] else b

    def result(self, state: list[Any] | None) -> Any:
        return None if state is None else state[1]


class Collect(Extracting):
    """The first ``max_items`` values in event-time order (equal times in arrival order), as a
    list in that order; values past the bound are dropped, whichever arrives first.

    State: the kept ``[ts_ms, value]`` pairs, sorted. Keeping the earliest rather than the latest
    makes a closed window's list independent of arrival order (ties aside).
    """

    name = "collect"

    def __init__(self, fn: Extractor | None = None, max_items: int = 1000) -> None:
        super().__init__(fn)
        self.max_items = int_in(max_items, 1, None, "agg.collect: max_items")

    def initial(self) -> list[list[Any]]:
        return []

    def add_at(self, state: list[list[Any]], value: Any, ts_ms: int) -> list[list[Any]]:
        if len(state) >= self.max_items and ts_ms >= state[-1][0]:
            return state
        state.insert(bisect_right(state, ts_ms, key=_TS), [ts_ms, plain(self.value(value))])
        del state[self.max_items :]
        return state

    def add(self, state: list[list[Any]], value: Any) -> list[list[Any]]:
        return self.add_at(state, value, state[-1][0] if state else 0)

    def merge(self, a: list[list[Any]], b: list[list[Any]]) -> list[list[Any]]:
        # heapq.merge is stable: on equal times a's pairs come first.
        return list(heapq.merge(a, b, key=_TS))[: self.max_items]

    def result(self, state: list[list[Any]]) -> list[Any]:
        return [value for _, value in state]


class TopK:
    """The ``k`` largest record values by ``by(value)`` (the value itself without ``by``), the
    largest first, earlier arrivals first among equal keys; values whose key is ``None`` are
    skipped.

    State: up to ``k`` ``[key, value]`` pairs, sorted. Keys and values are compared and kept as
    the state codec gives them back (a tuple as a list).
    """

    mergeable = True

    def __init__(self, k: int, by: Callable[[Any], Any] | None = None) -> None:
        self.k = int_in(k, 1, None, "agg.top_k: k")
        self._by = None if by is None else check_callable(by, "agg.top_k: by (value -> key)")

    def initial(self) -> list[list[Any]]:
        return []

    def add(self, state: list[list[Any]], value: Any) -> list[list[Any]]:
        key = value if self._by is None else self._by(value)
        if key is None:
            return state
        key = plain(key)
        i = len(state)
        while i > 0 and state[i - 1][0] < key:
            i -= 1
        if i < self.k:
            state.insert(i, [key, plain(value)])
            del state[self.k :]
        return state

    def merge(self, a: list[list[Any]], b: list[list[Any]]) -> list[list[Any]]:
        # sorted() stays stable with reverse=True: on equal keys a's pairs come first.
        return sorted(a + b, key=_TS, reverse=True)[: self.k]

    def result(self, state: list[list[Any]]) -> list[Any]:
        return [value for _, value in state]

    def __repr__(self) -> str:
        by = "" if self._by is None else f", by={getattr(self._by, '__qualname__', self._by)!s}"
        return f"agg.top_k({self.k}{by})"
