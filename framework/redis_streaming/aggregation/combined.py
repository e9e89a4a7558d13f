"""Combined: several named aggregations sharing one state entry per window."""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from typing import Any

from redis_streaming.aggregation.protocol import Aggregator
from redis_streaming.errors import InvalidArgument

__all__ = ["Combined"]

_METHODS = ("initial", "add", "merge", "result")


class Combined:
    """Several named aggregations over the same records, kept in one state.

    ``named`` maps names (non-empty identifiers, not keywords) to aggregators. The state is the
    list of their states in the names' order; ``result`` is a dict name -> that aggregator's
    result. ``add_at`` passes the event time to the aggregators that have ``add_at`` and calls
    ``add`` on the others. ``mergeable`` is true when every aggregator can merge. Raises
    :class:`InvalidArgument` for no aggregations, a bad name or something that is not an
    aggregator.
    """

    def __init__(self, named: Mapping[str, Aggregator[Any, Any]]) -> None:
        if not isinstance(named, Mapping) or not named:
            raise InvalidArgument(
                "Combined takes a non-empty dict of name -> aggregator, e.g. "
                "{'n': agg.count(), 'total': agg.sum(lambda v: v.amount)}"
            )
        for name, aggregator in named.items():
            if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
                raise InvalidArgument(
                    f"Combined: aggregation names are identifiers such as 'total' or "
                    f"'p99_latency', not {name!r}"
                )
            missing = [m for m in _METHODS if not callable(getattr(aggregator, m, None))]
            if missing:
                raise InvalidArgument(
                    f"Combined: {name!r} is not an aggregator ({aggregator!r} lacks "
                    f"{', '.join(missing)}); use the factories of redis_streaming.agg or "
                    "implement the Aggregator protocol"
                )
        self.names = list(named)
        self._aggs = list(named.values())
        self._timed = [
            (getattr(a, "add_at", None) if callable(getattr(a, "add_at", None)) else None)
            for a in self._aggs
        ]
        self.mergeable = all(
            getattr(a, "mergeable", True) and callable(getattr(a, "merge", None))
            for a in self._aggs
        )

    def initial(self) -> list[Any]:
        return [a.initial() for a in self._aggs]

    def add(self, state: list[Any], value: Any) -> list[Any]:
        return [a.add(s, value) for a, s in zip(self._aggs, state, strict=True)]

    def add_at(self, state: list[Any], value: Any, ts_ms: int) -> list[Any]:
        return [
            a.add(s, value) if at is None else at(s, value, ts_ms)
            for a, at, s in zip(self._aggs, self._timed, state, strict=True)
        ]

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        return [g.merge(x, y) for g, x, y in zip(self._aggs, a, b, strict=True)]

    def result(self, state: list[Any]) -> dict[str, Any]:
        return {name: g.result(s) for name, g, s in zip(self.names, self._aggs, state, strict=True)}

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {a!r}" for n, a in zip(self.names, self._aggs, strict=True))
        return f"Combined({{{inner}}})"
