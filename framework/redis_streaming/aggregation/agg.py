"""The built-in aggregations: ``from redis_streaming import agg``, then ``agg.sum(...)``.

Each factory returns an :class:`~redis_streaming.aggregation.Aggregator` whose state the state
codec stores exactly and which can merge (for session windows). ``fn`` maps a record value to the
value aggregated (``None``: the record value itself). ``sum``, ``mean``, ``min``, ``max``,
``top_k``, ``count_distinct`` and the quantiles skip values that are ``None`` (as SQL skips NULL);
``count`` counts records; ``first``, ``last``, ``collect`` and ``reduce`` take every value. Bad
arguments raise :class:`~redis_streaming.InvalidArgument` when the aggregation is built.

Exact: count, sum (of ints; floats add in arrival order), mean, min, max, first, last, collect,
reduce, top_k, and count_distinct up to its threshold (a set of 64-bit hashes, 8 bytes a value).
Approximate: count_distinct past it (HyperLogLog, about 1.6 % relative standard error, a state of
about 2.1 KB) and the quantiles (KLL, rank error about 1.3 %, a state under about 5 KB).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis_streaming.aggregation.basic import Count, Max, Mean, Min, Reduce, Sum
from redis_streaming.aggregation.distinct import CountDistinct
from redis_streaming.aggregation.ordered import Collect, First, Last, TopK
from redis_streaming.aggregation.protocol import Extractor
from redis_streaming.aggregation.quantile import Quantile, Quantiles

__all__ = [
    "collect",
    "count",
    "count_distinct",
    "first",
    "last",
    "max",
    "mean",
    "min",
    "quantile",
    "quantiles",
    "reduce",
    "sum",
    "top_k",
]


def count() -> Count:
    """The number of records in the window."""
    return Count()


def sum(fn: Extractor | None = None) -> Sum:
    """The sum of the values (``0`` for none): exact for ints, in arrival order for floats."""
    return Sum(fn)


def mean(fn: Extractor | None = None) -> Mean:
    """The arithmetic mean of the values, ``None`` for none."""
    return Mean(fn)


def min(fn: Extractor | None = None) -> Min:
    """The smallest value (earliest arrival among equals), ``None`` for none."""
    return Min(fn)


def max(fn: Extractor | None = None) -> Max:
    """The largest value (earliest arrival among equals), ``None`` for none."""
    return Max(fn)


def first(fn: Extractor | None = None) -> First:
    """The value with the earliest event time (earliest arrival among equals), ``None`` for none."""
    return First(fn)


def last(fn: Extractor | None = None) -> Last:
    """The value with the latest event time (latest arrival among equals), ``None`` for none."""
    return Last(fn)


def collect(fn: Extractor | None = None, max_items: int = 1000) -> Collect:
    """The first ``max_items`` values by event time (ties by arrival), as a list in that order;
    later values are dropped. ``max_items`` >= 1 bounds the state."""
    return Collect(fn, max_items)


def reduce(fn: Callable[[Any, Any], Any]) -> Reduce:
    """``fn(acc, value)`` folded over the values from the first one (``None`` for none); session
    windows merge with ``fn(acc_a, acc_b)``, so ``fn`` should be associative there."""
    return Reduce(fn)


def top_k(k: int, by: Callable[[Any], Any] | None = None) -> TopK:
    """The ``k`` (>= 1) largest values by ``by(value)`` (the value itself without ``by``), the
    largest first, earlier arrivals first among equal keys."""
    return TopK(k, by)


def count_distinct(
    fn: Extractor | None = None, exact_threshold: int = 1000, lg_k: int = 12
) -> CountDistinct:
    """The number of distinct values: exact while there are at most ``exact_threshold`` (>= 0;
    values told apart by a 64-bit hash, so barring odds of about n² / 2**65), then a HyperLogLog
    estimate (``lg_k`` in 4..21; relative standard error about
    ``1.04 / sqrt(2 ** lg_k)``, 1.6 % at 12)."""
    return CountDistinct(fn, exact_threshold, lg_k)


def quantile(fn: Extractor | None, q: float, k: int = 200) -> Quantile:
    """The value at quantile ``q`` in [0, 1] (0.5: the median), from a KLL sketch of accuracy
    ``k`` (8..65535; rank error about 1.3 % at 200); ``None`` for no values."""
    return Quantile(fn, q, k)


def quantiles(fn: Extractor | None, qs: Sequence[float], k: int = 200) -> Quantiles:
    """The values at the quantiles ``qs`` (each in [0, 1]) as a list in that order, from one KLL
    sketch (see :func:`quantile`); ``None`` for no values."""
    return Quantiles(fn, qs, k)
