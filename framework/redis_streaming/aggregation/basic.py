"""The exact arithmetic aggregators: count, sum, mean, min, max and reduce.

Their states are plain numbers or short lists, so they round-trip through the state codec as they
are. Values that ``fn`` maps to ``None`` are skipped (as SQL skips NULL), except by ``count``,
which counts records, and ``reduce``, which folds whatever it gets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis_streaming.aggregation.protocol import Extractor, check_callable, extractor, plain

__all__ = ["Count", "Extracting", "Max", "Mean", "Min", "Reduce", "Sum"]

Number = int | float


class Extracting:
    """Base of the aggregators that take ``fn``: record value -> the value aggregated."""

    mergeable = True
    name = "aggregator"

    def __init__(self, fn: Extractor | None = None) -> None:
        self._fn = extractor(fn, f"agg.{self.name}")

    def value(self, record_value: Any) -> Any:
        """The value ``fn`` extracts from ``record_value`` (the value itself without ``fn``)."""
        return record_value if self._fn is None else self._fn(record_value)

    def __repr__(self) -> str:
        fn = "" if self._fn is None else getattr(self._fn, "__qualname__", repr(self._fn))
        return f"agg.{self.name}({fn})"


class Count:
    """The number of records (state: that ``int``)."""

    mergeable = True

    def initial(self) -> int:
        return 0

    def add(self, state: int, value: Any) -> int:
        return state + 1

    def merge(self, a: int, b: int) -> int:
        return a + b

    def result(self, state: int) -> int:
        return state

    def __repr__(self) -> str:
        return "agg.count()"


class Sum(Extracting):
    """The sum of the values (``0`` for none); ints add exactly, floats in arrival order."""

    name = "sum"

    def initial(self) -> Number:
        return 0

    def add(self, state: Number, value: Any) -> Number:
        v = self.value(value)
        return state if v is None else state + v

    def merge(self, a: Number, b: Number) -> Number:
        return a + b

    def result(self, state: Number) -> Number:
        return state


class Mean(Extracting):
    """The arithmetic mean of the values, ``None`` for none (state: ``[count, sum]``)."""

    name = "mean"

    def initial(self) -> list[Number]:
        return [0, 0]

    def add(self, state: list[Number], value: Any) -> list[Number]:
        v = self.value(value)
        return state if v is None else [state[0] + 1, state[1] + v]

    def merge(self, a: list[Number], b: list[Number]) -> list[Number]:
        return [a[0] + b[0], a[1] + b[1]]

    def result(self, state: list[Number]) -> float | None:
        return state[1] / state[0] if state[0] else None


class Min(Extracting):
    """The smallest value (the first to arrive among equal ones), ``None`` for none.

    Values are compared as the state codec gives them back: a tuple as a list.
    """

    name = "min"

    def initial(self) -> Any:
        return None

    def add(self, state: Any, value: Any) -> Any:
        v = self.value(value)
        if v is None:
            return state
        v = plain(v)
        return v if state is None or v < state else state

    def merge(self, a: Any, b: Any) -> Any:
        return a if b is None or (a is not None and not b < a) else b

    def result(self, state: Any) -> Any:
        return state


class Max(Extracting):
    """The largest value (the first to arrive among equal ones), ``None`` for none.

    Values are compared as the state codec gives them back: a tuple as a list.
    """

    name = "max"

    def initial(self) -> Any:
        return None

    def add(self, state: Any, value: Any) -> Any:
        v = self.value(value)
        if v is None:
            return state
        v = plain(v)
        return v if state is None or v > state else state

    def merge(self, a: Any, b: Any) -> Any:
        return a if b is None or (a is not None and not b > a) else b

    def result(self, state: Any) -> Any:
        return state


class Reduce:
    """``fn(acc, value)`` folded over the record values, the first value as the start; ``None``
    for no records (state: ``[]`` or ``[acc]``).

    ``merge(a, b)`` is ``fn(acc_a, acc_b)``, so session windows need an associative ``fn`` whose
    accumulator and values are of one kind (e.g. ``lambda a, b: a * b``).
    """

    mergeable = True

    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        self._fn = check_callable(fn, "agg.reduce: fn (acc, value) -> acc")

    def initial(self) -> list[Any]:
        return []

    def add(self, state: list[Any], value: Any) -> list[Any]:
        return [plain(self._fn(state[0], value) if state else value)]

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        if not a or not b:
            return a or b
        return [plain(self._fn(a[0], b[0]))]

    def result(self, state: list[Any]) -> Any:
        return state[0] if state else None

    def __repr__(self) -> str:
        return f"agg.reduce({getattr(self._fn, '__qualname__', repr(self._fn))})"
