"""The job DSL: a :class:`Stream` is a point in a job's operator graph; each method adds an
operator after it and returns the stream of its output."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from redis_streaming._redis.names import validate_name
from redis_streaming.errors import InvalidArgument
from redis_streaming.runtime.graph import Stage
from redis_streaming.runtime.operators import (
    Branch,
    Filter,
    FlatMap,
    KeyBy,
    Map,
    Node,
    Pass,
    Process,
    StatefulMap,
    To,
)
from redis_streaming.state.stores import StoreKind, StoreSpec

if TYPE_CHECKING:
    from redis_streaming.runtime.job import Job

__all__ = ["Stream"]


class Stream:
    """The records at one point of a job. Functions may be sync (called inline: keep them
    quick) or async (awaited); values are what the previous operator produced."""

    __slots__ = ("job", "node", "stage")

    def __init__(self, job: Job, stage: Stage, node: Node) -> None:
        self.job = job
        self.stage = stage
        self.node = node

    def _then(self, node: Node) -> Stream:
        self.node.next.append(node)
        return Stream(self.job, self.stage, node)

    def map(self, fn: Callable[[Any], Any]) -> Stream:
        """Each value becomes ``fn(value)``."""
        return self._then(Map(fn))

    def filter(self, fn: Callable[[Any], Any]) -> Stream:
        """Only the values for which ``fn(value)`` is true go on."""
        return self._then(Filter(fn))

    def flat_map(self, fn: Callable[[Any], Iterable[Any]]) -> Stream:
        """Each value becomes the values of ``fn(value)`` (zero or more)."""
        return self._then(FlatMap(fn))

    def key_by(self, fn: Callable[[Any], Any], *, name: str | None = None) -> Stream:
        """Key each record by ``str(fn(value))``: records go through the job's internal topic
        ``<job>.<stage>.repartition`` to the partition of their new key, where the next stage
        (a consumer group of its own) goes on. Appends happen in the batch's commit, so no
        record is lost or repeated on the way."""
        stage = self.job.new_stage(internal=True, name=name)
        self._then(KeyBy(fn, stage.topic))
        return Stream(self.job, stage, stage.root)

    def stateful_map(
        self,
        fn: Callable[[Any, Any], Any],
        *,
        name: str | None = None,
        ttl: float | timedelta | None = None,
    ) -> Stream:
        """``fn(state, value) -> (new_state, output)`` per record key (``state`` is None for a
        key seen the first time; a ``new_state`` of None deletes it; an ``output`` of None emits
        nothing). The state lives in Redis beside the input partition (store ``name``) and is
        committed with the batch's outputs and acknowledgement in one atomic step."""
        spec = self.job.declare_store(
            self.stage, name or f"stateful_map-{self.job.next_id()}", "value", ttl
        )
        return self._then(StatefulMap(fn, spec))

    def process(
        self,
        fn: Callable[[Any, Any], Any],
        *,
        stores: Sequence[str | tuple[str, StoreKind] | StoreSpec] = (),
    ) -> Stream:
        """``fn(ctx, value)``: the general operator. ``ctx.key`` and ``ctx.timestamp`` describe
        the record, ``ctx.state(name)`` gives the store ``name`` (declared in ``stores``: a
        name for a value store, ``(name, "map"|"list"|"value")`` or a :class:`StoreSpec`) for
        this key, ``ctx.emit(value)`` passes values on."""
        specs: dict[str, StoreSpec] = {}
        for item in stores:
            if isinstance(item, StoreSpec):
                spec = self.job.declare_store(self.stage, item.name, item.kind, None, item.ttl_ms)
            elif isinstance(item, tuple):
                spec = self.job.declare_store(self.stage, item[0], item[1], None)
            else:
                spec = self.job.declare_store(self.stage, item, "value", None)
            specs[spec.name] = spec
        return self._then(Process(fn, specs))

    def branch(self, *predicates: Callable[[Any], Any]) -> tuple[Stream, ...]:
        """One stream per predicate: each record goes to the first whose predicate is true
        (records matching none are dropped)."""
        if not predicates:
            raise InvalidArgument("branch() needs at least one predicate")
        node = Branch(list(predicates))
        self.node.next.append(node)
        return tuple(Stream(self.job, self.stage, arm) for _, arm in node.arms)

    def merge(self, *others: Stream, name: str | None = None) -> Stream:
        """One stream of the records of this one and ``others`` (each keeps its key). Streams
        of different stages meet in a new stage, through an internal topic."""
        streams = [self, *others]
        for s in streams:
            if s.job is not self.job:
                raise InvalidArgument("merge() takes streams of the same job")
        if all(s.stage is self.stage for s in streams):
            point = Pass()
            for s in streams:
                s.node.next.append(point)
            return Stream(self.job, self.stage, point)
        stage = self.job.new_stage(internal=True, name=name)
        for s in streams:
            s.node.next.append(KeyBy(None, stage.topic))
        return Stream(self.job, stage, stage.root)

    def to(self, topic: str) -> None:
        """Append every record to ``topic`` (keyed by its key, partitioned like a producer's
        send), exactly once: the appends are part of the batch's atomic commit."""
        self._then(To(validate_name(topic)))
