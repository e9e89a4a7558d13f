"""count_distinct: an exact set of values up to a threshold, then a HyperLogLog sketch.

A value's identity is a 64-bit BLAKE2b hash of its state-key bytes (``state.codec.encode_key``:
values Python calls equal, such as ``1``, ``1.0`` and ``True``, are one value, and a tuple is the
same as the list of its items). The exact form, ``[hashes]``, keeps those hashes sorted in one
``bytes`` (8 little-endian bytes each): exact but for a hash collision (odds about n² / 2**65,
3e-14 for 1,000 values), 8 bytes a value whatever its size, and about 2.5 us an add at 900 values
(a list of the values' bytes measured 43 us and more bytes). When the number of distinct values
passes ``exact_threshold`` the state becomes an Apache DataSketches HLL sketch (``hll_sketch``,
HLL_4, ``lg_k`` = 12 by default) of the same hashes, stored as its compact serialized bytes:
about 2.1 KB whatever the count, with a relative standard error of about
``1.04 / sqrt(2 ** lg_k)`` (1.6 % at 12; three standard errors, about 4.7 %, bound 99.7 % of
estimates), about 2.5 us an add. ``merge`` joins any two forms: two sets stay exact while their
union fits the threshold, anything else goes through an ``hll_union``.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from redis_streaming.aggregation.basic import Extracting
from redis_streaming.aggregation.protocol import Extractor, int_in
from redis_streaming.errors import InvalidArgument
from redis_streaming.state.codec import encode_key

if TYPE_CHECKING:
    from datasketches import hll_sketch

__all__ = ["CountDistinct"]

DistinctState = list[bytes] | bytes  # [sorted hashes] (exact) or an HLL sketch
_SWAP = sys.byteorder != "little"  # the stored hashes are little-endian on every machine


def _hashes(blob: bytes) -> array[int]:
    hashes = array("q", blob)
    if _SWAP:
        hashes.byteswap()
    return hashes


def _blob(hashes: array[int]) -> bytes:
    if _SWAP:
        hashes = array("q", hashes)
        hashes.byteswap()
    return hashes.tobytes()


class CountDistinct(Extracting):
    """The number of distinct values, exact up to ``exact_threshold`` distinct values, then
    estimated by HyperLogLog; values that ``fn`` maps to ``None`` are not counted.

    Values must be state keys (str, int, float, bool, bytes, and tuples, lists and dicts of
    them); ``nan`` and other values raise :class:`InvalidArgument`.
    """

    name = "count_distinct"

    def __init__(
        self, fn: Extractor | None = None, exact_threshold: int = 1000, lg_k: int = 12
    ) -> None:
        super().__init__(fn)
        self.exact_threshold = int_in(
            exact_threshold, 0, None, "agg.count_distinct: exact_threshold"
        )
        self.lg_k = int_in(lg_k, 4, 21, "agg.count_distinct: lg_k")
        # Imported here, not with the package: datasketches loads numpy (about 0.3 s).
        import datasketches

        self._hll: type[hll_sketch] = datasketches.hll_sketch
        self._union = datasketches.hll_union
        self._type = datasketches.tgt_hll_type.HLL_4

    def initial(self) -> DistinctState:
        return [b""]

    def _hash(self, value: Any) -> int:
        try:
            key = encode_key(value)
        except InvalidArgument as exc:
            raise InvalidArgument(f"agg.count_distinct cannot count {value!r}: {exc}") from exc
        return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little", signed=True)

    def _sketch(self, hashes: array[int]) -> bytes:
        sketch = self._hll(self.lg_k, self._type)
        for h in hashes:
            sketch.update(h)
        return sketch.serialize_compact()

    def add(self, state: DistinctState, value: Any) -> DistinctState:
        v = self.value(value)
        if v is None:
            return state
        h = self._hash(v)
        if isinstance(state, bytes):
            sketch = self._hll.deserialize(state)
            sketch.update(h)
            return sketch.serialize_compact()
        hashes = _hashes(state[0])
        i = bisect_left(hashes, h)
        if i < len(hashes) and hashes[i] == h:
            return state
        hashes.insert(i, h)
        if len(hashes) > self.exact_threshold:
            return self._sketch(hashes)
        return [_blob(hashes)]

    def merge(self, a: DistinctState, b: DistinctState) -> DistinctState:
        if isinstance(a, list) and isinstance(b, list):
            hashes = array("q", sorted(set(_hashes(a[0])).union(_hashes(b[0]))))
            if len(hashes) <= self.exact_threshold:
                return [_blob(hashes)]
            return self._sketch(hashes)
        union = self._union(self.lg_k)
        for part in (a, b):
            blob = part if isinstance(part, bytes) else self._sketch(_hashes(part[0]))
            union.update(self._hll.deserialize(blob))
        return union.get_result(self._type).serialize_compact()

    def result(self, state: DistinctState) -> int:
        if isinstance(state, bytes):
            return round(self._hll.deserialize(state).get_estimate())
        return len(state[0]) // 8
