"""Combined (several named aggregations in one state), require_mergeable, and the arguments every
factory refuses when the aggregation is built."""

from __future__ import annotations

import operator
import random
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from redis_streaming import Aggregator, InvalidArgument, agg
from redis_streaming.aggregation import Combined, require_mergeable
from redis_streaming.state.codec import decode, encode
from tests.aggregation.folding import cuts, fold, merged, records


def _named() -> dict[str, Any]:
    return {
        "n": agg.count(),
        "total": agg.sum(lambda v: v["x"]),
        "first_id": agg.first(lambda v: v["id"]),
        "names": agg.count_distinct(lambda v: v["name"]),
        "p50": agg.quantile(lambda v: v["x"], 0.5),
        "concat": agg.reduce(lambda a, b: {"name": a["name"] + b["name"]}),
    }


@pytest.mark.parametrize("seed", range(10))
def test_combined_results_equal_each_aggregation_on_its_own(seed: int) -> None:
    rng = random.Random(seed)
    items = records(rng, rng.randint(0, 60))
    combined = Combined(_named())
    state = fold(combined, items)
    assert isinstance(state, list)
    assert len(state) == 6
    expected = {name: a.result(fold(a, items)) for name, a in _named().items()}
    assert combined.result(state) == expected
    assert list(combined.result(state)) == ["n", "total", "first_id", "names", "p50", "concat"]
    assert combined.result(merged(combined, cuts(rng, items))) == expected


def test_combined_passes_event_time_only_to_those_that_take_it() -> None:
    combined = Combined({"first": agg.first(), "n": agg.count(), "all": agg.collect()})
    state = fold(combined, [(9, "late"), (1, "early")])
    assert combined.result(state) == {"first": "early", "n": 2, "all": ["early", "late"]}
    state = combined.add(combined.initial(), "x")
    assert combined.result(state) == {"first": "x", "n": 1, "all": ["x"]}


class _Unmergeable:
    """A user's aggregator without a usable merge."""

    mergeable = False

    def initial(self) -> int:
        return 0

    def add(self, state: int, value: Any) -> int:
        return state + 1

    def merge(self, a: int, b: int) -> int:
        raise NotImplementedError

    def result(self, state: int) -> int:
        return state


def test_require_mergeable_refuses_an_aggregator_that_cannot_merge() -> None:
    for aggregator in (*_named().values(), Combined(_named()), agg.top_k(2), agg.collect()):
        assert isinstance(aggregator, Aggregator)
        require_mergeable(aggregator, "a session window")
    with pytest.raises(InvalidArgument, match=r"a session window merges .* cannot merge"):
        require_mergeable(_Unmergeable(), "a session window")
    mixed = Combined({"n": agg.count(), "mine": _Unmergeable()})
    assert mixed.mergeable is False
    with pytest.raises(InvalidArgument, match="a session window"):
        require_mergeable(mixed, "a session window")
    with pytest.raises(InvalidArgument, match="cannot merge"):
        require_mergeable(object(), "a session window")


def test_combined_refuses_bad_names_and_non_aggregators() -> None:
    for bad in (
        {},
        {"": agg.count()},
        {"a b": agg.count()},
        {"class": agg.count()},
        {1: agg.count()},
    ):
        with pytest.raises(InvalidArgument, match="Combined"):
            Combined(bad)
    with pytest.raises(InvalidArgument, match="'n' is not an aggregator"):
        Combined({"n": len})  # type: ignore[dict-item]


NOT_CALLABLE: Any = "price"
REFUSED: list[tuple[Callable[[], object], str]] = [
    (lambda: agg.sum(NOT_CALLABLE), r"agg\.sum: fn"),
    (lambda: agg.mean(NOT_CALLABLE), r"agg\.mean: fn"),
    (lambda: agg.min(NOT_CALLABLE), r"agg\.min: fn"),
    (lambda: agg.max(NOT_CALLABLE), r"agg\.max: fn"),
    (lambda: agg.first(NOT_CALLABLE), r"agg\.first: fn"),
    (lambda: agg.last(NOT_CALLABLE), r"agg\.last: fn"),
    (lambda: agg.collect(NOT_CALLABLE), r"agg\.collect: fn"),
    (lambda: agg.collect(max_items=0), r"max_items must be an int of at least 1"),
    (lambda: agg.collect(max_items=True), r"max_items must be an int"),
    (lambda: agg.reduce(NOT_CALLABLE), r"agg\.reduce: fn"),
    (lambda: agg.top_k(0), r"agg\.top_k: k must be an int of at least 1"),
    (lambda: agg.top_k(-3), r"agg\.top_k: k"),
    (lambda: agg.top_k(2.5), r"agg\.top_k: k"),  # type: ignore[arg-type]
    (lambda: agg.top_k(2, by=NOT_CALLABLE), r"agg\.top_k: by"),
    (lambda: agg.count_distinct(NOT_CALLABLE), r"agg\.count_distinct: fn"),
    (lambda: agg.count_distinct(exact_threshold=-1), r"exact_threshold must be an int of at"),
    (lambda: agg.count_distinct(lg_k=3), r"lg_k must be an int in 4\.\.21"),
    (lambda: agg.quantile(NOT_CALLABLE, 0.5), r"agg\.quantile: fn"),
    (lambda: agg.quantile(None, 1.5), r"q must be a number in \[0, 1\]"),
    (lambda: agg.quantile(None, -0.1), r"q must be a number in \[0, 1\]"),
    (lambda: agg.quantile(None, float("nan")), r"q must be a number in \[0, 1\]"),
    (lambda: agg.quantile(None, 0.5, k=4), r"k must be an int in 8\.\.65535"),
    (lambda: agg.quantiles(None, []), r"qs must be a non-empty list"),
    (lambda: agg.quantiles(None, "0.5"), r"qs must be a non-empty list"),  # type: ignore[arg-type]
    (lambda: agg.quantiles(None, [0.5, 2]), r"each of qs must be a number in \[0, 1\]"),
]


@pytest.mark.parametrize(("build", "message"), REFUSED, ids=[m for _, m in REFUSED])
def test_bad_arguments_are_refused_when_the_aggregation_is_built(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        build()


def test_bounds_that_are_allowed() -> None:
    assert agg.collect(max_items=1).max_items == 1
    assert agg.top_k(1).k == 1
    assert agg.count_distinct(exact_threshold=0, lg_k=4).lg_k == 4
    assert agg.count_distinct(lg_k=21).lg_k == 21
    assert agg.quantiles(None, (0, 1)).qs == [0.0, 1.0]
    top = agg.top_k(1, by=operator.neg)
    assert top.result(decode(encode(fold(top, [(0, 3), (0, 1), (0, 2)])))) == [1]


def test_importing_the_package_does_not_load_datasketches_or_numpy() -> None:
    # datasketches loads numpy (about 0.3 s): only building a sketching aggregator imports it.
    code = (
        "import sys, redis_streaming\n"
        "from redis_streaming import agg\n"
        "agg.count(); agg.top_k(3); agg.collect()\n"
        "assert 'datasketches' not in sys.modules and 'numpy' not in sys.modules, 'loaded'\n"
        "agg.quantile(None, 0.5)\n"
        "assert 'datasketches' in sys.modules\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
