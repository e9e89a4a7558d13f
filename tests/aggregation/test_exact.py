"""The exact aggregators against brute-force references on seeded random records: the result of
folding through the state codec, states that survive the codec unchanged, and merges of states
built on any split of the input that equal the state built on all of it."""

from __future__ import annotations

import functools
import operator
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from redis_streaming import agg
from redis_streaming.state.codec import decode, encode
from tests.aggregation.folding import Item, cuts, fold, merged, records, same, scatter, tree_merged

SEEDS = range(25)


def _by_time(items: list[Item]) -> list[Any]:
    return [
        value for _, value in sorted(items, key=operator.itemgetter(0))
    ]  # stable: ties by arrival


def _present(items: list[Item], field: str) -> list[Any]:
    return [v[field] for _, v in items if v[field] is not None]


def _or_none(fn: Callable[[list[Any]], Any], values: list[Any]) -> Any:
    return fn(values) if values else None


@dataclass(frozen=True)
class Case:
    make: Callable[[], Any]
    reference: Callable[[list[Item]], Any]
    prep: Callable[[dict[str, Any]], Any] | None = None  # the record value given to the aggregator
    any_partition: bool = (
        True  # False: ties broken by arrival, so only contiguous splits merge equal
    )


X = operator.itemgetter("x")
CASES: dict[str, Case] = {
    "count": Case(agg.count, len),
    "sum": Case(lambda: agg.sum(X), lambda items: sum(_present(items, "x"))),
    "mean": Case(
        lambda: agg.mean(X),
        lambda items: _or_none(lambda xs: sum(xs) / len(xs), _present(items, "x")),
    ),
    "min": Case(lambda: agg.min(X), lambda items: _or_none(min, _present(items, "x"))),
    "max": Case(lambda: agg.max(X), lambda items: _or_none(max, _present(items, "x"))),
    # 1, 1.0 and True are equal: the first to arrive is kept, as by builtins.min and max.
    "min-of-equals": Case(
        lambda: agg.min(lambda v: v["num"]),
        lambda items: _or_none(min, [v["num"] for _, v in items]),
        any_partition=False,
    ),
    "max-of-equals": Case(
        lambda: agg.max(lambda v: v["num"]),
        lambda items: _or_none(max, [v["num"] for _, v in items]),
        any_partition=False,
    ),
    "min-tuple": Case(
        lambda: agg.min(lambda v: (v["name"], v["id"])),
        lambda items: _or_none(lambda ps: list(min(ps)), [(v["name"], v["id"]) for _, v in items]),
    ),
    "first": Case(
        lambda: agg.first(lambda v: v["id"]),
        lambda items: _or_none(lambda vs: vs[0]["id"], _by_time(items)),
        any_partition=False,
    ),
    "last": Case(
        lambda: agg.last(lambda v: v["id"]),
        lambda items: _or_none(lambda vs: vs[-1]["id"], _by_time(items)),
        any_partition=False,
    ),
    "collect-5": Case(
        lambda: agg.collect(lambda v: v["id"], max_items=5),
        lambda items: [v["id"] for v in _by_time(items)][:5],
        any_partition=False,
    ),
    "collect-all": Case(
        lambda: agg.collect(lambda v: v["name"]),
        lambda items: [v["name"] for v in _by_time(items)],
        any_partition=False,
    ),
    "reduce-concat": Case(
        lambda: agg.reduce(operator.add),
        lambda items: _or_none(
            lambda vs: functools.reduce(operator.add, vs), [v for _, v in items]
        ),
        prep=operator.itemgetter("name"),
        any_partition=False,
    ),
    "reduce-max": Case(
        lambda: agg.reduce(lambda a, b: a if a >= b else b),
        lambda items: _or_none(max, [v for _, v in items]),
        prep=operator.itemgetter("id"),
    ),
    "top_k-by": Case(
        lambda: agg.top_k(3, by=X),
        lambda items: sorted([v for _, v in items if v["x"] is not None], key=X, reverse=True)[
            :3
        ],  # sorted stays stable with reverse: equal keys in arrival order
        any_partition=False,
    ),
    "top_k-values": Case(
        lambda: agg.top_k(4),
        lambda items: sorted((v for _, v in items), reverse=True)[:4],
        prep=operator.itemgetter("id"),
    ),
    "count_distinct": Case(
        lambda: agg.count_distinct(lambda v: v["name"]),
        lambda items: len({v["name"] for _, v in items}),
    ),
    "count_distinct-equals": Case(  # 1, 1.0 and True are one value, as in a set
        lambda: agg.count_distinct(lambda v: v["num"]),
        lambda items: len({v["num"] for _, v in items}),
    ),
    "count_distinct-tuples": Case(
        lambda: agg.count_distinct(lambda v: (v["name"], v["x"])),
        lambda items: len({(v["name"], v["x"]) for _, v in items}),
    ),
}


def _input(case: Case, seed: int) -> tuple[random.Random, list[Item]]:
    rng = random.Random(seed)
    items = records(rng, rng.randint(0, 60))
    if case.prep is not None:
        items = [(ts, case.prep(v)) for ts, v in items]
    return rng, items


@pytest.mark.parametrize("name", CASES)
def test_result_equals_the_brute_force_reference(name: str) -> None:
    case = CASES[name]
    for seed in SEEDS:
        _, items = _input(case, seed)
        expected = case.reference(items)
        aggregator = case.make()
        assert same(aggregator.result(fold(aggregator, items)), expected), (seed, items)
        assert same(aggregator.result(fold(aggregator, items, stored=False)), expected), seed


@pytest.mark.parametrize("name", CASES)
def test_every_state_round_trips_through_the_codec_unchanged(name: str) -> None:
    case = CASES[name]
    for seed in SEEDS:
        _, items = _input(case, seed)
        aggregator = case.make()
        state = aggregator.initial()
        add_at = getattr(aggregator, "add_at", None)
        for ts, value in items:
            state = aggregator.add(state, value) if add_at is None else add_at(state, value, ts)
            assert same(decode(encode(state)), state), (seed, state)


@pytest.mark.parametrize("name", CASES)
def test_merging_the_states_of_any_split_equals_the_state_of_the_whole(name: str) -> None:
    case = CASES[name]
    for seed in SEEDS:
        rng, items = _input(case, seed)
        aggregator = case.make()
        whole = fold(aggregator, items)
        expected = aggregator.result(whole)
        for _ in range(4):
            parts = cuts(rng, items)
            assert same(merged(aggregator, parts), whole), (seed, parts)
            assert same(tree_merged(aggregator, parts), whole), (seed, parts)
            if case.any_partition:
                dealt = scatter(rng, items)
                assert same(aggregator.result(merged(aggregator, dealt)), expected), (seed, dealt)
        empty = aggregator.initial()
        assert same(aggregator.merge(empty, whole), whole)
        assert same(aggregator.merge(decode(encode(whole)), aggregator.initial()), whole)
