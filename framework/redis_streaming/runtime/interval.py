"""The stream-stream interval join: records of two streams with the same key whose event times
are close enough, ``left.ts - before <= right.ts <= left.ts + after``.

Both streams reach one stage through its internal topic, each entry marked with the side it came
from. Per key, the operator buffers both sides in its store (values in their plain, codec form)
and emits each matching pair once, when the second of the two arrives. A buffered record is
kept until no record still to come can match it: a left one until the watermark reaches
``ts + after + grace``, a right one until ``ts + before + grace``; records are late when
``ts + grace <= watermark``. On expiry, unmatched left records (``how="left"`` or ``"outer"``)
and unmatched right records (``"outer"``) are emitted, once, with ``None`` for the other side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis_streaming.aggregation.protocol import plain
from redis_streaming.errors import InvalidArgument
from redis_streaming.runtime.operators import Node, is_async
from redis_streaming.runtime.records import Record
from redis_streaming.state.cache import ABSENT
from redis_streaming.state.codec import encode_key
from redis_streaming.state.stores import StoreSpec

if TYPE_CHECKING:
    from redis_streaming.runtime.context import BatchRun

__all__ = ["IntervalJoin"]


def _pair(left: Any, right: Any) -> Any:
    return [left, right]


class IntervalJoin(Node):
    """``left.join_interval(right, before=, after=, how=)``: see the module docstring."""

    __slots__ = ("after", "before", "grace", "how", "joiner", "joiner_async", "op", "spec")

    def __init__(
        self,
        spec: StoreSpec,
        op: str,
        *,
        before_ms: int,
        after_ms: int,
        grace_ms: int,
        how: str,
        joiner: Callable[[Any, Any], Any] | None,
    ) -> None:
        super().__init__()
        if how not in ("inner", "left", "outer"):
            raise InvalidArgument(
                f"an interval join's how is 'inner', 'left' or 'outer', got {how!r}"
            )
        if joiner is not None and not callable(joiner):
            raise InvalidArgument(f"joiner must be a function (left, right), got {joiner!r}")
        self.spec = spec
        self.op = op
        self.before = before_ms
        self.after = after_ms
        self.grace = grace_ms
        self.how = how
        self.joiner = joiner or _pair
        self.joiner_async = is_async(self.joiner)

    def member(self, key: str | None) -> bytes:
        """The timer of ``key`` in this operator."""
        return encode_key([self.op, key])

    def store_names(self) -> list[str]:
        """The stores to load before this operator's timer fires."""
        return [self.spec.name]

    def _expiry(self, side: str, ts: int) -> int:
        return ts + (self.after if side == "L" else self.before) + self.grace

    def _next(self, state: dict[str, list[list[Any]]]) -> int | None:
        times = [self._expiry(side, e[0]) for side in ("L", "R") for e in state[side]]
        return min(times) if times else None

    def _save(self, run: BatchRun, key: str | None, state: dict[str, list[list[Any]]]) -> None:
        field = run.key_bytes(key)
        empty = not state["L"] and not state["R"]
        run.state.set(self.spec.name, field, ABSENT if empty else state)
        run.timers.set(self.member(key), None if empty else self._next(state))

    async def _emit(self, run: BatchRun, key: str | None, left: Any, right: Any, ts: int) -> None:
        joined = self.joiner(left, right)
        if self.joiner_async:
            joined = await joined
        await self.forward(run, Record(key, joined, ts))

    async def push(self, run: BatchRun, rec: Record) -> None:
        side = rec.side
        if side not in ("L", "R"):
            raise InvalidArgument("an interval join's input entry carries no side (rs-side header)")
        if rec.ts + self.grace <= run.clock.watermark:
            run.counts[2] += 1  # late: no record still buffered or to come can be its match
            return
        state = run.state.get(self.spec.name, run.key_bytes(rec.key)) or {"L": [], "R": []}
        value = plain(rec.value)
        matched = False
        for entry in state["R" if side == "L" else "L"]:
            t = entry[0]
            left_ts, right_ts = (rec.ts, t) if side == "L" else (t, rec.ts)
            if left_ts - self.before <= right_ts <= left_ts + self.after:
                matched = True
                entry[2] = True
                left, right = (value, entry[1]) if side == "L" else (entry[1], value)
                await self._emit(run, rec.key, left, right, max(rec.ts, t))
        state[side].append([rec.ts, value, matched])
        self._save(run, rec.key, state)

    async def fire(
        self, run: BatchRun, key: str | None, *rest: Any, domain: str, emit: bool = True
    ) -> None:
        """Drop the key's records no future record can match; emit unmatched ones per ``how``
        (unless not ``emit``)."""
        state = run.state.get(self.spec.name, run.key_bytes(key))
        if state is None:
            run.timers.set(self.member(key), None)
            return
        wm = run.clock.watermark
        expired: list[tuple[int, str, list[Any]]] = []
        for side in ("L", "R"):
            keep = []
            for entry in state[side]:
                if self._expiry(side, entry[0]) <= wm:
                    expired.append((entry[0], side, entry))
                else:
                    keep.append(entry)
            state[side] = keep
        for ts, side, entry in sorted(expired, key=lambda e: (e[0], e[1])):
            if entry[2] or not emit:
                continue
            if side == "L" and self.how in ("left", "outer"):
                await self._emit(run, key, entry[1], None, ts)
            elif side == "R" and self.how == "outer":
                await self._emit(run, key, None, entry[1], ts)
        self._save(run, key, state)
