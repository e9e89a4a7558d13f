"""The operators of a stage: small nodes with one method on the hot path, ``push``.

A stage is a tree of nodes fed with the records of its input topic in entry order. Each node
runs its function (sync functions are called inline, async ones awaited) and pushes what it
produces to the nodes after it. Terminal nodes hand outputs to the batch (``run.output``): an
output topic, or the internal topic of the next stage. State goes through ``run.state`` (the
batch's overlay), never straight to Redis.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from redis_streaming.errors import InvalidArgument
from redis_streaming.runtime.records import Record
from redis_streaming.state.cache import ABSENT
from redis_streaming.state.stores import StoreSpec

if TYPE_CHECKING:
    from redis_streaming.runtime.context import BatchRun

__all__ = [
    "Branch",
    "FiredTimer",
    "Filter",
    "FlatMap",
    "KeyBy",
    "Map",
    "Node",
    "Pass",
    "Process",
    "StatefulMap",
    "To",
    "is_async",
]


def is_async(fn: Callable[..., Any]) -> bool:
    """True for coroutine functions and objects whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


class Node:
    """One operator; ``next`` are the nodes its records go to."""

    __slots__ = ("next",)

    def __init__(self) -> None:
        self.next: list[Node] = []

    async def push(self, run: BatchRun, rec: Record) -> None:
        """Handle one record."""
        await self.forward(run, rec)

    async def forward(self, run: BatchRun, rec: Record) -> None:
        for node in self.next:
            await node.push(run, rec)


class Pass(Node):
    """Passes records on unchanged: a stage's entry, a branch's arm, a merge point."""

    __slots__ = ()


class _Fn(Node):
    __slots__ = ("fn", "is_async")

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        if not callable(fn):
            raise InvalidArgument(f"{type(self).__name__.lower()} needs a function, got {fn!r}")
        self.fn = fn
        self.is_async = is_async(fn)

    async def call(self, *args: Any) -> Any:
        if self.is_async:
            return await self.fn(*args)
        return self.fn(*args)


class Map(_Fn):
    """``fn(value) -> value``."""

    __slots__ = ()

    async def push(self, run: BatchRun, rec: Record) -> None:
        value = await self.fn(rec.value) if self.is_async else self.fn(rec.value)
        await self.forward(run, rec.with_value(value))


class Filter(_Fn):
    """Keeps the records for which ``fn(value)`` is true."""

    __slots__ = ()

    async def push(self, run: BatchRun, rec: Record) -> None:
        if await self.fn(rec.value) if self.is_async else self.fn(rec.value):
            await self.forward(run, rec)


class FlatMap(_Fn):
    """``fn(value) -> iterable of values``, each a record of its own (same key and time)."""

    __slots__ = ()

    async def push(self, run: BatchRun, rec: Record) -> None:
        values: Iterable[Any] = await self.call(rec.value)
        for value in values:
            await self.forward(run, rec.with_value(value))


class Branch(Node):
    """Sends each record to the arm of the first predicate it satisfies (others: dropped)."""

    __slots__ = ("arms",)

    def __init__(self, predicates: list[Callable[[Any], Any]]) -> None:
        super().__init__()
        self.arms = [(_Fn(p), Pass()) for p in predicates]

    async def push(self, run: BatchRun, rec: Record) -> None:
        for predicate, arm in self.arms:
            if await predicate.call(rec.value):
                await arm.push(run, rec)
                return


class StatefulMap(_Fn):
    """``fn(state, value) -> (new_state, output)`` per record key; a ``new_state`` of None
    deletes the key's state, an ``output`` of None emits nothing."""

    __slots__ = ("spec",)

    def __init__(self, fn: Callable[..., Any], spec: StoreSpec) -> None:
        super().__init__(fn)
        self.spec = spec

    async def push(self, run: BatchRun, rec: Record) -> None:
        key = run.key_bytes(rec.key)
        state = run.state.get(self.spec.name, key)
        result = await self.fn(state, rec.value) if self.is_async else self.fn(state, rec.value)
        try:
            new_state, output = result
        except (TypeError, ValueError):
            raise InvalidArgument(
                f"a stateful_map function returns (new_state, output); got {type(result).__name__}"
            ) from None
        run.state.set(
            self.spec.name, key, ABSENT if new_state is None else new_state, self.spec.ttl_ms
        )
        if output is not None:
            await self.forward(run, rec.with_value(output))


class Process(_Fn):
    """``fn(ctx, value)`` with ``ctx.key``, ``ctx.state(name)``, ``ctx.emit(value)`` and
    ``ctx.timers``; ``on_timer(ctx, timer)`` runs when one of its timers fires."""

    __slots__ = ("on_timer", "on_timer_async", "op", "stores")

    def __init__(
        self,
        fn: Callable[..., Any],
        stores: dict[str, StoreSpec],
        on_timer: Callable[..., Any] | None = None,
        op: str = "",
    ) -> None:
        super().__init__(fn)
        if on_timer is not None and not callable(on_timer):
            raise InvalidArgument(f"on_timer must be a function, got {on_timer!r}")
        self.stores = stores
        self.on_timer = on_timer
        self.on_timer_async = on_timer is not None and is_async(on_timer)
        self.op = op

    async def push(self, run: BatchRun, rec: Record) -> None:
        ctx = run.process_context(self, rec)
        await self.call(ctx, rec.value)
        for out in ctx.emitted:
            await self.forward(run, out)

    def store_names(self) -> list[str]:
        """The stores to load before a timer of this operator fires."""
        return list(self.stores)

    async def fire(
        self, run: BatchRun, key: str | None, *rest: Any, domain: str, emit: bool = True
    ) -> None:
        """One of this operator's timers fired: ``on_timer(ctx, timer)`` (not when ``emit`` is
        false: the timer is only removed)."""
        name = rest[0] if rest else ""
        timers = run.timers if domain == "event" else run.wall_timers
        member = run.timer_member(self.op, key, name)
        at = timers.get(member)
        timers.set(member, None)  # fired once: the commit removes it
        if self.on_timer is None or at is None or not emit:
            return
        ts = at if domain == "event" else run.now_ms
        ctx = run.process_context(self, Record(key, None, ts))
        fired = FiredTimer(name, at, domain)
        if self.on_timer_async:
            await self.on_timer(ctx, fired)
        else:
            self.on_timer(ctx, fired)
        for out in ctx.emitted:
            await self.forward(run, out)


class FiredTimer:
    """A timer that fired: its ``name``, the time it was set for (``at``: a watermark for
    ``domain == "event"``, epoch ms for ``"wall"``)."""

    __slots__ = ("at", "domain", "name")

    def __init__(self, name: str, at: int, domain: str) -> None:
        self.name = name
        self.at = at
        self.domain = domain

    def __repr__(self) -> str:
        return f"FiredTimer(name={self.name!r}, at={self.at}, domain={self.domain!r})"


class KeyBy(Node):
    """Ends a stage: re-keys each record with ``str(fn(value))`` (``fn=None`` keeps the key)
    and appends it to the next stage's internal topic, in the batch's commit."""

    __slots__ = ("fn", "is_async", "side", "topic")

    def __init__(
        self, fn: Callable[[Any], Any] | None, topic: str, side: str | None = None
    ) -> None:
        super().__init__()
        if fn is not None and not callable(fn):
            raise InvalidArgument(f"key_by needs a function, got {fn!r}")
        self.fn = fn
        self.is_async = fn is not None and is_async(fn)
        self.topic = topic
        self.side = side

    async def push(self, run: BatchRun, rec: Record) -> None:
        key = rec.key
        fn = self.fn
        if fn is not None:
            new = await fn(rec.value) if self.is_async else fn(rec.value)
            key = new if isinstance(new, str) else str(new)
        run.output(self.topic, key, rec.value, rec.ts, internal=True, side=self.side)


class To(Node):
    """Appends each record to ``topic`` with its key, in the batch's commit (exactly-once)."""

    __slots__ = ("topic",)

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic

    async def push(self, run: BatchRun, rec: Record) -> None:
        run.output(self.topic, rec.key, rec.value, rec.ts, internal=False)
