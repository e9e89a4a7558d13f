"""The aggregator protocol: how a windowed aggregation folds records into one stored state.

A windowed-aggregation operator keeps one state per (key, window) in a Redis hash, written with
the state codec (:mod:`redis_streaming.state.codec`). For each record it decodes the window's
state, calls ``add`` (or ``add_at``, when the aggregator has it, with the record's event time),
and encodes the result again; when the window closes it calls ``result``. Session windows that a
record bridges are joined with ``merge``. So a state is a plain value the codec writes exactly
(``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, lists, dicts with ``str`` keys; a
sketch as its serialized bytes), never a live object, and every method returns a state instead
of keeping anything on ``self``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from redis_streaming.errors import InvalidArgument
from redis_streaming.state.codec import decode, encode

__all__ = [
    "Aggregator",
    "Extractor",
    "check_callable",
    "extractor",
    "int_in",
    "plain",
    "require_mergeable",
]

S = TypeVar("S")
R = TypeVar("R", covariant=True)

Extractor = Callable[[Any], Any]
"""What ``fn`` is in the factories of :mod:`redis_streaming.aggregation.agg`: record value ->
the value aggregated (``None``: the record value itself)."""

_SCALARS = frozenset((int, float, str, bytes, bool, type(None)))


@runtime_checkable
class Aggregator(Protocol[S, R]):
    """An aggregation as four pure functions over a state the state codec stores exactly.

    - ``initial()``: the state of a window that has no records yet.
    - ``add(state, value)``: the state after one more record value (in arrival order). It may
      return a new object or the ``state`` it was given, changed: the caller never reuses the
      state it passed in.
    - ``merge(a, b)``: the state of the records of ``a`` and of ``b`` together, ``a``'s taken as
      arriving first; needed by session windows, which merge when a record bridges them. It must
      agree with ``add``: folding a sequence in two parts and merging equals folding it whole
      (exactly, or within the documented error of a sketch). An aggregator that cannot merge sets
      ``mergeable = False`` (absent means ``True``) and is refused by session windows
      (:func:`require_mergeable`).
    - ``result(state)``: what the window emits; it must not change ``state``.

    Optional: ``add_at(state, value, ts_ms)``, the same as ``add`` for a record with event time
    ``ts_ms`` (milliseconds since the epoch). The operator calls it instead of ``add`` when the
    aggregator has it; time-aware aggregators (``first``, ``last``, ``collect``) order by it, ties
    by arrival.

    A state must survive ``decode(encode(state))`` with the same meaning: tuples come back as
    lists and bytes stay bytes, so keep lists in states (:func:`plain` turns a value into what the
    codec gives back).
    """

    def initial(self) -> S:
        """The state of an empty window."""
        ...

    def add(self, state: S, value: Any) -> S:
        """``state`` with one more record value folded in."""
        ...

    def merge(self, a: S, b: S) -> S:
        """The state of the values of ``a`` followed by those of ``b``."""
        ...

    def result(self, state: S) -> R:
        """What the window emits for ``state``."""
        ...


def require_mergeable(aggregator: object, where: str) -> None:
    """Raise :class:`InvalidArgument` unless ``aggregator`` can merge states.

    ``where`` names what needs merging (e.g. ``"a session window"``) for the message. An
    aggregator can merge when it has a callable ``merge`` and its ``mergeable`` attribute, if
    any, is true.
    """
    merge = getattr(aggregator, "merge", None)
    if not callable(merge) or not getattr(aggregator, "mergeable", True):
        raise InvalidArgument(
            f"{where} merges the states of windows, and the aggregator {aggregator!r} cannot "
            "merge (it has no merge method or sets mergeable = False); use a window kind that "
            "never merges (tumbling, hopping, sliding, count) or an aggregator with a merge"
        )


def extractor(fn: object, where: str) -> Extractor | None:
    """``fn`` checked as a value extractor: ``None`` or callable, else :class:`InvalidArgument`."""
    if fn is None:
        return None
    return check_callable(fn, f"{where}: fn (record value -> the value aggregated, or None)")


def check_callable(fn: object, what: str) -> Callable[..., Any]:
    """``fn`` if it is callable, else :class:`InvalidArgument` naming ``what``."""
    if not callable(fn):
        raise InvalidArgument(f"{what} must be callable, not {type(fn).__qualname__}")
    return fn


def int_in(value: object, low: int, high: int | None, what: str) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) in ``low..high`` (``None``: no upper
    bound), else :class:`InvalidArgument` naming ``what``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"of at least {low}" if high is None else f"in {low}..{high}"
        raise InvalidArgument(f"{what} must be an int {bounds}, not {value!r}")
    return value


def plain(value: Any) -> Any:
    """``value`` as the state codec gives it back (tuples as lists, models as dicts).

    Aggregators store values through this, so a state means the same before and after a round
    trip through the codec (a tuple kept as a tuple would compare differently with a list).
    Raises :class:`InvalidArgument` for a value the codec cannot store.
    """
    if type(value) in _SCALARS:
        return value
    return decode(encode(value))
