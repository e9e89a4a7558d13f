"""Aggregations for windows: the :class:`Aggregator` protocol, the built-ins of :mod:`agg`, and
:class:`Combined` for several named ones in one state.

Pure Python with no Redis I/O: an aggregator only folds values into a state that the state codec
stores exactly; the windowed-aggregation operator keeps one such state per (key, window).
"""

from redis_streaming.aggregation import agg
from redis_streaming.aggregation.combined import Combined
from redis_streaming.aggregation.protocol import Aggregator, require_mergeable

__all__ = ["Aggregator", "Combined", "agg", "require_mergeable"]
