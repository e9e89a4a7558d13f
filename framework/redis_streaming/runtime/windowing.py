"""The windowed aggregation operator: folds records into their windows' aggregator states (one
state value per record key, in the operator's store) and emits results when windows close
(``final``) or on every update (``current``); a timer per key fires at its next close."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from redis_streaming.runtime.operators import Node
from redis_streaming.runtime.records import Record
from redis_streaming.state.cache import ABSENT
from redis_streaming.state.codec import encode_key
from redis_streaming.state.stores import StoreSpec
from redis_streaming.window.kinds import Window, WindowKind

if TYPE_CHECKING:
    from redis_streaming.runtime.context import BatchRun

__all__ = ["WindowAggregate", "WindowResult"]


class WindowResult(BaseModel):
    """One window's result: the record key, the window's bounds (epoch ms: ``[start, end)``
    for tumbling and hopping windows, ``[start, end]`` for sliding and session windows, record
    indexes for count windows) and the aggregation's result."""

    model_config = ConfigDict(frozen=True)

    key: str | None
    start: int
    end: int
    value: Any


class WindowAggregate(Node):
    """``window(kind).aggregate(...)`` then ``.final()`` or ``.current()``."""

    __slots__ = ("_prefix", "agg", "final", "fold", "kind", "late_to", "op", "spec")

    def __init__(
        self,
        kind: WindowKind,
        agg: Any,
        spec: StoreSpec,
        op: str,
        *,
        final: bool,
        late_to: str | None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.agg = agg
        self.spec = spec
        self.op = op
        self.final = final
        self.late_to = late_to
        add_at = getattr(agg, "add_at", None)
        if add_at is not None:
            self.fold = add_at
        else:
            add = agg.add
            self.fold = lambda state, value, ts: add(state, value)
        bind = getattr(kind, "bind_merge", None)
        if bind is not None:
            bind(agg.merge)
        # A timer's member encode_key([op, key]) is a MessagePack array: its header and op,
        # then the key's own bytes (the state field, which the batch has at hand).
        none = encode_key(None)
        prefix = encode_key([op, None])
        assert prefix.endswith(none)
        self._prefix = prefix[: -len(none)]

    def member(self, key: str | None) -> bytes:
        """The timer of ``key`` in this operator: ``encode_key([op, key])``."""
        return self._prefix + encode_key(key)

    def _store(self, run: BatchRun, field: bytes, state: Any) -> None:
        run.state.set(self.spec.name, field, ABSENT if state is None else state, self.spec.ttl_ms)

    def _timer(self, run: BatchRun, field: bytes, state: Any) -> None:
        """Move the key's timer to its next close, writing only when that changed (most
        records fall into windows whose close is already set)."""
        member = self._prefix + field
        at = self.kind.next_close(state) if state else None
        timers = run.timers
        if timers.get(member) != at:
            timers.set(member, at)

    async def push(self, run: BatchRun, rec: Record) -> None:
        field = run.key_bytes(rec.key)
        state = run.state.get(self.spec.name, field)
        kind = self.kind
        wm = run.clock.watermark
        state, late, updated, opened = kind.add(
            state, rec.ts, rec.value, wm, self.agg.initial, self.fold
        )
        run.counts[0] += opened
        if late:
            run.counts[2] += 1
            if self.late_to is not None:
                run.output(self.late_to, rec.key, rec.value, rec.ts, internal=False)
            return
        closed: list[Window] = []
        if not kind.event_time:
            state, closed = kind.close(state, wm, self.agg.merge)
        self._store(run, field, state)
        if kind.event_time:
            self._timer(run, field, state)
        if not self.final:
            await self._emit(run, rec.key, updated)
        elif closed:
            await self._emit(run, rec.key, closed)
        run.counts[1] += len(closed)

    def store_names(self) -> list[str]:
        """The stores to load before this operator's timer fires."""
        return [self.spec.name]

    async def fire(self, run: BatchRun, key: str | None, *rest: Any, domain: str) -> None:
        """The key's timer is due: emit (``final``) and drop the windows that have closed."""
        field = run.key_bytes(key)
        state = run.state.get(self.spec.name, field)
        if state is None:
            self._timer(run, field, None)
            return
        state, closed = self.kind.close(state, run.clock.watermark, self.agg.merge)
        self._store(run, field, state)
        self._timer(run, field, state)
        run.counts[1] += len(closed)
        if self.final:
            await self._emit(run, key, closed)

    async def _emit(self, run: BatchRun, key: str | None, windows: list[Window]) -> None:
        result = self.agg.result
        exclusive = self.kind.name in ("tumbling", "hopping")
        for start, end, state in windows:
            ts = end - 1 if exclusive else end
            value = WindowResult(key=key, start=start, end=end, value=result(state))
            await self.forward(run, Record(key, value, ts if self.kind.event_time else run.now_ms))
