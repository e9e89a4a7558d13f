"""count_distinct: exact up to the threshold, then a HyperLogLog estimate within its error bound,
through the state codec, and merges across both forms."""

from __future__ import annotations

import random

import pytest
from datasketches import hll_sketch

from redis_streaming import InvalidArgument, agg
from redis_streaming.state.codec import decode, encode
from tests.aggregation.folding import Item, cuts, fold, merged, scatter

# Three standard errors of an HLL union at lg_k 12: 99.7 % of estimates are within it.
BOUND = abs(hll_sketch.get_rel_err(True, True, 12, 3))


def _values(seed: int, n: int, distinct: int) -> list[Item]:
    rng = random.Random(seed)
    return [(0, f"user-{rng.randrange(distinct)}") for _ in range(n)]


def _close(estimate: int, truth: int) -> bool:
    return abs(estimate - truth) <= BOUND * truth


def test_exact_up_to_the_threshold_then_a_sketch() -> None:
    count = agg.count_distinct(exact_threshold=50)
    items = [(0, i % 50) for i in range(200)]  # 50 distinct values, each four times
    state = fold(count, items)
    assert isinstance(state, list)
    assert count.result(state) == 50
    state = decode(encode(count.add(state, 50)))  # the 51st distinct value: a sketch
    assert isinstance(state, bytes)
    assert len(encode(state)) <= 2200
    assert _close(count.result(state), 51)
    again = fold(count, [*items, (0, 50), *items])  # repeats are not counted again
    assert count.result(again) == count.result(state)


def test_threshold_zero_estimates_from_the_first_value() -> None:
    count = agg.count_distinct(exact_threshold=0)
    assert count.result(count.initial()) == 0
    state = fold(count, [(0, "a"), (0, "b"), (0, "a")])
    assert isinstance(state, bytes)
    assert count.result(state) == 2


def test_values_equal_in_python_are_one_value_and_none_is_not_counted() -> None:
    count = agg.count_distinct(lambda v: v["k"])
    items: list[Item] = [(0, {"k": k}) for k in (1, 1.0, True, (1, "a"), [1, "a"], None, b"x")]
    assert count.result(fold(count, items)) == 3


@pytest.mark.parametrize("seed", range(3))
def test_the_estimate_of_the_whole_and_of_merged_splits_is_within_the_bound(seed: int) -> None:
    items = _values(seed, 12_000, 8_000)
    truth = len({v for _, v in items})
    count = agg.count_distinct()
    whole = fold(count, items)
    assert isinstance(whole, bytes)
    assert _close(count.result(whole), truth), (count.result(whole), truth)
    rng = random.Random(seed)
    for parts in (cuts(rng, items), scatter(rng, items, 4), [items[:500], items[500:]]):
        estimate = count.result(merged(count, parts))
        assert _close(estimate, truth), (estimate, truth, [len(p) for p in parts])


def test_merge_works_across_the_exact_and_the_sketch_forms() -> None:
    count = agg.count_distinct(exact_threshold=100)
    small = [(0, i) for i in range(60)]  # exact
    other = [(0, i) for i in range(30, 90)]  # exact, overlapping: 90 together
    large = [(0, i) for i in range(50, 400)]  # a sketch
    a, b, c = fold(count, small), fold(count, other), fold(count, large)
    assert isinstance(a, list)
    assert isinstance(c, bytes)
    assert count.merge(a, b) == fold(count, small + other)  # still exact
    assert count.result(count.merge(a, b)) == 90
    for state in (count.merge(a, c), count.merge(c, a)):
        assert isinstance(state, bytes)
        assert _close(count.result(state), 400)
    crossing = count.merge(fold(count, large[:80]), fold(count, small))  # 130 together
    assert isinstance(crossing, bytes)
    assert _close(count.result(crossing), 130)


def test_a_value_that_cannot_be_a_state_key_is_refused_clearly() -> None:
    count = agg.count_distinct()
    with pytest.raises(InvalidArgument, match="count_distinct cannot count nan"):
        count.add(count.initial(), float("nan"))
