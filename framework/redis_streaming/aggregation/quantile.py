"""quantile / quantiles: a mergeable KLL sketch of the values (Apache DataSketches).

The state is ``None`` for no values, else the serialized bytes of a ``kll_doubles_sketch``
(values kept as IEEE doubles; q = 0 and q = 1 give the exact minimum and maximum, which the
sketch tracks apart from its samples). With the
default ``k`` = 200 a state stays under about 5 KB for any number of values, and the normalized
rank error is about 1.33 % (``kll_doubles_sketch.get_normalized_rank_error(k, False)``, at 99 %
confidence): the value returned for ``q`` has a rank within that much of ``q``. Each add
deserializes and serializes the sketch (about 2 us).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis_streaming.aggregation.basic import Extracting
from redis_streaming.aggregation.protocol import Extractor, int_in
from redis_streaming.errors import InvalidArgument

if TYPE_CHECKING:
    from datasketches import kll_doubles_sketch

__all__ = ["Quantile", "Quantiles", "rank_error"]


def rank_error(k: int = 200) -> float:
    """The KLL sketch's normalized rank error for ``k`` (99 % confidence)."""
    return _kll().get_normalized_rank_error(k, False)


def _kll() -> type[kll_doubles_sketch]:
    # Imported on first use, not with the package: datasketches loads numpy (about 0.3 s).
    import datasketches

    return datasketches.kll_doubles_sketch


def _check_q(q: object, what: str) -> float:
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 1:
        raise InvalidArgument(f"{what} must be a number in [0, 1] (0.5: the median), not {q!r}")
    return float(q)


class _Kll(Extracting):
    """A KLL sketch of the values: the add and merge of :class:`Quantile` and :class:`Quantiles`."""

    def __init__(self, fn: Extractor | None, qs: list[float], k: int) -> None:
        super().__init__(fn)
        self.qs = qs
        self.k = int_in(k, 8, 65535, f"agg.{self.name}: k")
        self._kll = _kll()

    def initial(self) -> bytes | None:
        return None

    def add(self, state: bytes | None, value: Any) -> bytes | None:
        v = self.value(value)
        if v is None:
            return state
        if type(v) is not float and type(v) is not int and not isinstance(v, numbers.Real):
            raise TypeError(f"agg.{self.name} takes real numbers, not {type(v).__qualname__}")
        x = float(v)
        if math.isnan(x):
            return state
        sketch = self._kll(self.k) if state is None else self._kll.deserialize(state)
        sketch.update(x)
        return sketch.serialize()

    def merge(self, a: bytes | None, b: bytes | None) -> bytes | None:
        if a is None or b is None:
            return b if a is None else a
        sketch = self._kll.deserialize(a)
        sketch.merge(self._kll.deserialize(b))
        return sketch.serialize()

    def values(self, state: bytes | None) -> list[float] | None:
        """The values at ``self.qs``, ``None`` for no values."""
        if state is None:
            return None
        sketch = self._kll.deserialize(state)
        values = sketch.get_quantiles(self.qs, inclusive=True)
        # The sketch may have compacted the extremes away; it tracks them exactly on the side.
        return [
            sketch.get_min_value() if q == 0 else sketch.get_max_value() if q == 1 else value
            for q, value in zip(self.qs, values, strict=True)
        ]


class Quantiles(_Kll):
    """The values at the quantiles ``qs`` (a list in that order), ``None`` for no values.

    The value for ``q`` is the smallest value ``v`` with at least a fraction ``q`` of the values
    ``<= v``, within the sketch's rank error (see the module docstring). Values that ``fn`` maps
    to ``None`` or ``nan`` are skipped; others must be real numbers (``TypeError`` otherwise).
    """

    name = "quantiles"

    def __init__(self, fn: Extractor | None, qs: Sequence[float], k: int = 200) -> None:
        if isinstance(qs, str | bytes) or not isinstance(qs, Sequence) or not qs:
            raise InvalidArgument(
                f"agg.quantiles: qs must be a non-empty list of numbers in [0, 1], not {qs!r}"
            )
        super().__init__(fn, [_check_q(q, "agg.quantiles: each of qs") for q in qs], k)

    def result(self, state: bytes | None) -> list[float] | None:
        return self.values(state)


class Quantile(_Kll):
    """The value at the quantile ``q`` (0.5: the median), ``None`` for no values; see
    :class:`Quantiles` for its meaning and error."""

    name = "quantile"

    def __init__(self, fn: Extractor | None, q: float, k: int = 200) -> None:
        super().__init__(fn, [_check_q(q, "agg.quantile: q")], k)

    def result(self, state: bytes | None) -> float | None:
        values = self.values(state)
        return None if values is None else values[0]
