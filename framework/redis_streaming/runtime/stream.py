"""The job DSL: a :class:`Stream` is a point in a job's operator graph; each method adds an
operator after it and returns the stream of its output."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from redis_streaming._redis.names import validate_name
from redis_streaming.errors import InvalidArgument
from redis_streaming.runtime.graph import Stage
from redis_streaming.runtime.interval import IntervalJoin
from redis_streaming.runtime.joining import JoinAsOf, JoinTable, Table
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
from redis_streaming.runtime.sinking import RedisSinkNode, SinkNode
from redis_streaming.runtime.windowed import WindowedStream, window_kind
from redis_streaming.sink import RedisSink, Sink
from redis_streaming.state.stores import StoreKind, StoreSpec
from redis_streaming.window.kinds import WindowKind, ms

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
        on_timer: Callable[[Any, Any], Any] | None = None,
        name: str | None = None,
    ) -> Stream:
        """``fn(ctx, value)``: the general operator. ``ctx.key`` and ``ctx.timestamp`` describe
        the record, ``ctx.state(name)`` gives the store ``name`` (declared in ``stores``: a
        name for a value store, ``(name, "map"|"list"|"value")`` or a :class:`StoreSpec`) for
        this key, ``ctx.emit(value)`` passes values on.

        With ``on_timer``, ``ctx.timers.at_event_time(ts)`` / ``at_wall_time(epoch_ms)`` set
        timers for the record's key (each fires once, persisted in Redis with the partition);
        ``on_timer(ctx, timer)`` then runs with the same ``ctx`` (its ``key``, ``state``,
        ``emit``) and ``timer.name``, ``timer.at``, ``timer.domain`` (``"event"``/``"wall"``).
        ``name`` identifies the operator's timers (default ``process-<n>``): keep it stable."""
        specs: dict[str, StoreSpec] = {}
        for item in stores:
            if isinstance(item, StoreSpec):
                spec = self.job.declare_store(self.stage, item.name, item.kind, None, item.ttl_ms)
            elif isinstance(item, tuple):
                spec = self.job.declare_store(self.stage, item[0], item[1], None)
            else:
                spec = self.job.declare_store(self.stage, item, "value", None)
            specs[spec.name] = spec
        if on_timer is None:
            return self._then(Process(fn, specs))
        op = validate_name(name, "operator") if name else f"process-{self.job.next_id()}"
        if op in self.stage.timer_ops:
            raise InvalidArgument(f"job {self.job.name!r} already has an operator named {op!r}")
        node = Process(fn, specs, on_timer, op)
        self.stage.timer_ops[op] = node
        return self._then(node)

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

    def join_table(
        self, table: Table, *, how: str = "inner", joiner: Callable[[Any, Any], Any] | None = None
    ) -> Stream:
        """Each record with ``table``'s current value for the record's key:
        ``joiner(value, table_value)`` (default ``[value, table_value]``). ``how="left"`` keeps
        records whose key the table lacks (``table_value`` None); ``"inner"`` drops them. The
        value is the table's last committed one when the record's batch runs."""
        return self._join(JoinTable(table, how, joiner), table)

    def join_asof(
        self, table: Table, *, how: str = "inner", joiner: Callable[[Any, Any], Any] | None = None
    ) -> Stream:
        """Each record with ``table``'s value as of the record's event time (the newest
        version at or before it; the table must keep ``versions``)."""
        if table.versions is None:
            raise InvalidArgument(
                "join_asof needs a table that keeps versions: "
                f"job.table({table.topic!r}, versions=10)"
            )
        return self._join(JoinAsOf(table, how, joiner), table)

    def join_interval(
        self,
        other: Stream,
        *,
        before: float | timedelta,
        after: float | timedelta,
        how: str = "inner",
        joiner: Callable[[Any, Any], Any] | None = None,
        grace: float | timedelta = 0,
        idle_timeout: float | timedelta | None = None,
        name: str | None = None,
    ) -> Stream:
        """Join this stream (left) with ``other`` (right) on the record key, pairing records
        whose event times satisfy ``left.ts - before <= right.ts <= left.ts + after``:
        ``joiner(left, right)`` (default ``[left, right]``) once per pair. ``how="left"`` also
        emits each left record that found no match, ``"outer"`` each unmatched record of either
        side, with ``None`` for the other, once, when it expires (the watermark passes its
        last chance of a match plus ``grace``). Records with ``ts + grace <= watermark`` are
        late: dropped and counted. Values reach ``joiner`` in their plain form (models as
        dicts). Both streams go through a new stage of the job (an internal topic)."""
        if other.job is not self.job or other is self:
            raise InvalidArgument("join_interval takes another stream of the same job")
        before_ms = ms(before, "before", positive=False)
        after_ms = ms(after, "after", positive=False)
        grace_ms = ms(grace, "grace", positive=False)
        stage = self.job.new_stage(internal=True, name=name)
        self.node.next.append(KeyBy(None, stage.topic, side="L"))
        other.node.next.append(KeyBy(None, stage.topic, side="R"))
        op = f"join-{stage.id}"
        spec = self.job.declare_store(stage, op, "value", None)
        node = IntervalJoin(
            spec, op, before_ms=before_ms, after_ms=after_ms, grace_ms=grace_ms, how=how,
            joiner=joiner,
        )  # fmt: skip
        stage.timer_ops[op] = node
        if idle_timeout is not None:
            stage.idle_ms = ms(idle_timeout, "idle_timeout")
        stage.root.next.append(node)
        return Stream(self.job, stage, node)

    def _join(self, node: Node, table: Table) -> Stream:
        if table.job is not self.job:
            raise InvalidArgument("a join takes a table of the same job")
        if table not in self.stage.lookups:
            self.stage.lookups.append(table)
        return self._then(node)

    def window(
        self,
        kind: WindowKind,
        *,
        grace: float | timedelta = 0,
        late_to: str | None = None,
        idle_timeout: float | timedelta | None = None,
        max_out_of_orderness: float | timedelta = 0,
        name: str | None = None,
    ) -> WindowedStream:
        """Cut the stream into windows of ``kind`` (``windows.tumbling(60)``, ...) per record
        key, by event time (the source's ``timestamp`` or the entry's). A window closes when the
        partition's watermark (largest event time seen minus ``max_out_of_orderness``) reaches
        its end plus ``grace``. Records later than that are dropped and counted, or appended to
        ``late_to``. With ``idle_timeout``, a partition that receives nothing for that long
        moves its watermark on with the wall clock, so its windows close without new data.
        ``name`` names the window's state store (default ``window-<n>``)."""
        k = window_kind(kind, grace)
        stage = self.stage
        ooo = ms(max_out_of_orderness, "max_out_of_orderness", positive=False)
        stage.ooo_ms = max(stage.ooo_ms, ooo)
        if idle_timeout is not None:
            idle = ms(idle_timeout, "idle_timeout")
            stage.idle_ms = idle if stage.idle_ms is None else min(stage.idle_ms, idle)
        return WindowedStream(self, k, validate_name(late_to) if late_to else None, name)

    def to(self, topic: str) -> None:
        """Append every record to ``topic`` (keyed by its key, partitioned like a producer's
        send), exactly once: the appends are part of the batch's atomic commit."""
        self._then(To(validate_name(topic)))

    def sink(self, sink: Sink | RedisSink) -> None:
        """Write every record to ``sink`` (see :mod:`redis_streaming.sink`). A
        :class:`RedisSink`'s writes are part of the batch's atomic commit (exactly-once). Any
        other sink (``async write(batch)``) gets each batch's records before the batch
        commits, and the stage reads on only once it returned: a slow sink slows the stage,
        a failing one is retried with backoff until it succeeds (never dead-lettered); a
        batch whose commit then fails is written again (at-least-once, unless the sink
        deduplicates by entry id like :class:`PostgresSink`)."""
        if isinstance(sink, RedisSink):
            if sink.rate_limit is not None and not any(s is sink for s in self.stage.sinks):
                self.stage.sinks.append(sink)  # its permits are taken by the SinkWriter
            self._then(RedisSinkNode(sink))
            return
        if not callable(getattr(sink, "write", None)):
            raise InvalidArgument(
                f"sink() takes a RedisSink or an object with async write(batch), got {sink!r}; "
                "wrap a function in CallableSink(fn)"
            )
        if not any(s is sink for s in self.stage.sinks):
            self.stage.sinks.append(sink)
        self._then(SinkNode(sink))
