"""The windowing DSL: ``stream.window(kind, grace=...)`` then ``.aggregate(...)`` or
``.reduce(fn)``, then ``.final()`` or ``.current()``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from redis_streaming.aggregation import Combined, agg, require_mergeable
from redis_streaming.errors import InvalidArgument
from redis_streaming.runtime.windowing import WindowAggregate
from redis_streaming.window.kinds import WindowKind, ms

if TYPE_CHECKING:
    from redis_streaming.runtime.stream import Stream

__all__ = ["Aggregated", "WindowedStream"]


class WindowedStream:
    """A stream cut into windows of ``kind`` per record key; aggregate it next."""

    __slots__ = ("kind", "late_to", "name", "stream")

    def __init__(
        self, stream: Stream, kind: WindowKind, late_to: str | None, name: str | None
    ) -> None:
        self.stream = stream
        self.kind = kind
        self.late_to = late_to
        self.name = name

    def aggregate(self, aggregator: Any = None, /, **named: Any) -> Aggregated:
        """One aggregator, or several named ones (``views=agg.count(), p95=agg.quantile(...)``)
        sharing one state per window; the result is then a dict name -> result."""
        if aggregator is not None and named:
            raise InvalidArgument("aggregate() takes one aggregator or named ones, not both")
        if aggregator is None:
            if not named:
                raise InvalidArgument(
                    "aggregate() needs an aggregator, e.g. aggregate(n=agg.count())"
                )
            aggregator = Combined(named)
        for method in ("initial", "add", "result"):
            if not callable(getattr(aggregator, method, None)):
                raise InvalidArgument(
                    f"{aggregator!r} is not an aggregator (it has no {method}()); use the "
                    "factories of redis_streaming.agg or implement the Aggregator protocol"
                )
        if self.kind.needs_merge:
            require_mergeable(aggregator, f"a {self.kind.name} window")
        return Aggregated(self, aggregator)

    def reduce(self, fn: Callable[[Any, Any], Any]) -> Aggregated:
        """``fn(accumulated, value)`` over each window's values (also merges sessions)."""
        return self.aggregate(agg.reduce(fn))


class Aggregated:
    """A windowed aggregation; choose when it emits."""

    __slots__ = ("aggregator", "windowed")

    def __init__(self, windowed: WindowedStream, aggregator: Any) -> None:
        self.windowed = windowed
        self.aggregator = aggregator

    def _build(self, final: bool) -> Stream:
        w = self.windowed
        stream = w.stream
        job = stream.job
        op = w.name or f"window-{job.next_id()}"
        spec = job.declare_store(stream.stage, op, "value", None)
        node = WindowAggregate(w.kind, self.aggregator, spec, op, final=final, late_to=w.late_to)
        stream.stage.timer_ops[op] = node
        return stream._then(node)

    def final(self) -> Stream:
        """One :class:`~redis_streaming.runtime.windowing.WindowResult` per window, when it
        closes (``watermark >= end + grace``; count windows: when full)."""
        return self._build(True)

    def current(self) -> Stream:
        """A :class:`~redis_streaming.runtime.windowing.WindowResult` for every window a record
        updates, with the running result."""
        return self._build(False)


def window_kind(kind: Any, grace: float | timedelta) -> WindowKind:
    """``kind`` checked, with its grace set (a copy per use)."""
    if not isinstance(kind, WindowKind):
        raise InvalidArgument(
            f"window() takes a window kind such as windows.tumbling(60), got {kind!r}"
        )
    copied: WindowKind = copy.copy(kind)
    copied.grace_ms = ms(grace, "grace", positive=False)
    return copied
