"""quantile / quantiles: exact for small inputs, within the KLL rank error for large ones and for
merged splits, through the state codec."""

from __future__ import annotations

import bisect
import math
import random

import pytest

from redis_streaming import agg
from redis_streaming.aggregation.quantile import rank_error
from redis_streaming.state.codec import encode
from tests.aggregation.folding import Item, cuts, fold, merged, scatter

QS = [0.0, 0.01, 0.1, 0.25, 0.5, 0.9, 0.99, 1.0]


def _nearest_rank(xs: list[float], q: float) -> float:
    """The smallest x with at least a fraction q of the values <= x."""
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _rank_ok(ordered: list[float], q: float, value: float, eps: float) -> bool:
    """Is ``q`` within ``eps`` of the ranks that ``value`` spans in ``ordered``?"""
    n = len(ordered)
    below, upto = bisect.bisect_left(ordered, value) / n, bisect.bisect_right(ordered, value) / n
    return below - eps <= q <= upto + eps


def _latencies(seed: int, n: int) -> list[Item]:
    rng = random.Random(seed)
    return [(0, {"ms": rng.lognormvariate(3, 1)}) for _ in range(n)]


@pytest.mark.parametrize("seed", range(10))
def test_small_inputs_give_the_exact_nearest_rank_quantiles(seed: int) -> None:
    rng = random.Random(seed)
    xs = [float(rng.randint(0, 50)) for _ in range(rng.randint(1, 150))]  # < k: no compaction
    qs = [0.0, 0.25, 0.5, 0.75, 1.0]  # q * n is exact in binary
    quantiles = agg.quantiles(None, qs)
    assert quantiles.result(fold(quantiles, [(0, x) for x in xs])) == [
        _nearest_rank(xs, q) for q in qs
    ]
    median = agg.quantile(None, 0.5)
    assert median.result(fold(median, [(0, x) for x in xs])) == _nearest_rank(xs, 0.5)


@pytest.mark.parametrize("seed", range(2))
def test_large_inputs_and_merged_splits_are_within_the_rank_error(seed: int) -> None:
    items = _latencies(seed, 12_000)
    ordered = sorted(v["ms"] for _, v in items)
    quantiles = agg.quantiles(lambda v: v["ms"], QS)
    eps = rank_error(200)
    whole = fold(quantiles, items)
    assert len(encode(whole)) <= 5200
    rng = random.Random(seed)
    for state in (
        whole,
        merged(quantiles, cuts(rng, items)),
        merged(quantiles, scatter(rng, items)),
    ):
        values = quantiles.result(state)
        assert values is not None
        assert values[0] == ordered[0]  # q = 0 and q = 1 are the exact extremes
        assert values[-1] == ordered[-1]
        for q, value in zip(QS, values, strict=True):
            assert _rank_ok(ordered, q, value, eps), (q, value)


def test_none_and_nan_are_skipped_and_no_values_give_none() -> None:
    p50 = agg.quantile(lambda v: v.get("ms"), 0.5)
    assert p50.result(p50.initial()) is None
    assert p50.result(fold(p50, [(0, {}), (0, {"ms": float("nan")})])) is None
    assert p50.result(fold(p50, [(0, {}), (0, {"ms": 3}), (0, {"ms": float("nan")})])) == 3.0
    both = agg.quantiles(None, [0.9, 0.1])
    assert both.result(both.initial()) is None
    assert both.result(fold(both, [(0, x) for x in range(1, 11)])) == [9.0, 1.0]
    assert p50.merge(p50.initial(), p50.initial()) is None


def test_values_that_are_not_numbers_are_refused() -> None:
    p50 = agg.quantile(None, 0.5)
    with pytest.raises(TypeError, match=r"agg\.quantile takes real numbers, not str"):
        p50.add(p50.initial(), "3.5")


def test_merging_sketches_of_disjoint_ranges_gives_the_quantiles_of_both() -> None:
    quantiles = agg.quantiles(None, [0.0, 0.25, 0.5, 0.75, 1.0])
    low = fold(quantiles, [(0, float(x)) for x in range(1000)])
    high = fold(quantiles, [(0, float(x)) for x in range(1000, 3000)])
    eps = rank_error(200) * 3000
    for state in (quantiles.merge(low, high), quantiles.merge(high, low)):
        values = quantiles.result(state)
        assert values is not None
        assert values[0] == 0.0
        assert values[-1] == 2999.0
        for expected, value in zip([749, 1499, 2249], values[1:4], strict=True):
            assert abs(value - expected) <= eps, (expected, value)
