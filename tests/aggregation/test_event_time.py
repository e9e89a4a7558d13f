"""first, last and collect order by event time, not arrival: out-of-order records, ties broken
by arrival, plain ``add`` as arrival order, and merges of session windows."""

from __future__ import annotations

from redis_streaming import agg
from tests.aggregation.folding import fold

# (event time, value) in arrival order: times out of order, two ties (3 and 9).
OUT_OF_ORDER = [(5, "a"), (3, "b"), (9, "c"), (3, "d"), (1, "e"), (9, "f"), (7, "g")]


def test_first_is_the_earliest_event_time_not_the_first_arrival() -> None:
    first = agg.first()
    assert first.result(fold(first, OUT_OF_ORDER)) == "e"
    assert first.result(fold(first, OUT_OF_ORDER[:4])) == "b"  # ts 3 twice: the earlier arrival


def test_last_is_the_latest_event_time_not_the_last_arrival() -> None:
    last = agg.last()
    assert last.result(fold(last, OUT_OF_ORDER)) == "f"  # ts 9 twice: the later arrival
    assert last.result(fold(last, OUT_OF_ORDER[:3])) == "c"
    assert last.result(fold(last, [*OUT_OF_ORDER, (8, "h")])) == "f"


def test_collect_keeps_the_earliest_values_in_event_time_order() -> None:
    assert agg.collect().result(fold(agg.collect(), OUT_OF_ORDER)) == list("ebdagcf")
    three = agg.collect(max_items=3)
    assert three.result(fold(three, OUT_OF_ORDER)) == list("ebd")
    # A late-arriving early record displaces the latest one kept.
    assert three.result(fold(three, [*OUT_OF_ORDER, (0, "z")])) == list("zeb")


def test_without_event_times_the_order_is_arrival() -> None:
    values = ["p", "q", "r", "s"]
    for aggregator, expected in (
        (agg.first(), "p"),
        (agg.last(), "s"),
        (agg.collect(), values),
        (agg.collect(max_items=2), ["p", "q"]),
    ):
        state = aggregator.initial()
        for value in values:
            state = aggregator.add(state, value)
        assert aggregator.result(state) == expected


def test_merge_keeps_event_time_order_and_breaks_ties_as_if_a_arrived_first() -> None:
    a, b = [(4, "a4"), (2, "a2"), (6, "a6")], [(2, "b2"), (6, "b6"), (1, "b1")]
    for aggregator, expected in (
        (agg.first(), "b1"),
        (agg.last(), "b6"),
        (agg.collect(), ["b1", "a2", "b2", "a4", "a6", "b6"]),
    ):
        state = aggregator.merge(fold(aggregator, a), fold(aggregator, b))
        assert aggregator.result(state) == expected
    first, last = agg.first(), agg.last()
    tie_a, tie_b = fold(first, [(5, "a")]), fold(first, [(5, "b")])
    assert first.result(first.merge(tie_a, tie_b)) == "a"
    assert last.result(last.merge(tie_a, tie_b)) == "b"


def test_first_and_last_keep_none_values_and_extract_with_fn() -> None:
    items = [(2, {"v": None}), (1, {"v": 10}), (3, {"v": None})]
    assert agg.first(lambda r: r["v"]).result(fold(agg.first(lambda r: r["v"]), items)) == 10
    last = agg.last(lambda r: r["v"])
    state = fold(last, items)
    assert state == [3, None]
    assert last.result(state) is None
    assert last.result(last.initial()) is None
