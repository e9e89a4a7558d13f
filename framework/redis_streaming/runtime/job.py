"""``Job``: a named graph of operators over topics, compiled into stages and run by tasks."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from redis_streaming._redis.names import validate_name
from redis_streaming.errors import InvalidArgument
from redis_streaming.runtime.graph import Stage
from redis_streaming.runtime.handle import JobHandle
from redis_streaming.runtime.joining import Table, TableUpdate
from redis_streaming.runtime.stream import Stream
from redis_streaming.state.stores import StoreKind, StoreSpec, ttl_ms

if TYPE_CHECKING:
    from datetime import timedelta

    from redis_streaming.metrics import Metrics
    from redis_streaming.mq.options import MQOptions
    from redis_streaming.runtime.options import RuntimeOptions
    from redis_streaming.runtime.wallclock import Clock

__all__ = ["Job"]


class Job:
    """A stream-processing job: ``Job("page-stats")``, then ``job.source(topic)`` and operators
    on the returned :class:`Stream`, then ``await job.run(redis, options)``.

    ``name`` is the job's stable id: it names the consumer groups of its stages
    (``<name>.s0``, ...), its internal topics (``<name>.s1.repartition``) and its state, so
    renaming a job starts it afresh. ``partitions``: partition count of its internal topics
    (default: ``MQOptions.default_partitions``). Invalid names raise
    :class:`~redis_streaming.InvalidName` here, before any I/O.
    """

    def __init__(self, name: str, *, partitions: int | None = None) -> None:
        self.name = validate_name(name, "job")
        if partitions is not None and not 1 <= partitions <= 4096:
            raise InvalidArgument(f"job {name!r}: partitions must be 1..4096, got {partitions}")
        self.partitions = partitions
        self.stages: list[Stage] = []
        self.stores: dict[str, StoreSpec] = {}
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        """A number for an operator's default name (in declaration order)."""
        return next(self._ids)

    def source(
        self,
        topic: str,
        *,
        value_type: Any = None,
        timestamp: Callable[[Any], float | int] | None = None,
    ) -> Stream:
        """The records of ``topic``, decoded as ``value_type`` (a pydantic model, ``dict``,
        ``str``, ``bytes``, any type pydantic validates; ``None``: as the payload is). An entry
        that is not one goes to the topic's dead letters (reason ``undecodable``).

        Event time is the entry's ``ts`` (the producer's clock, epoch ms) unless ``timestamp``
        extracts it from the value (epoch milliseconds, a number); a value whose extractor
        fails or gives no number goes to the dead letters (reason ``undecodable``)."""
        if timestamp is not None and not callable(timestamp):
            raise InvalidArgument(f"timestamp must be a function of the value, got {timestamp!r}")
        validate_name(topic)
        if any(s.topic == topic for s in self.stages):
            raise InvalidArgument(f"job {self.name!r} reads topic {topic!r} twice; read it once")
        stage = Stage(self.name, self._free_id(), topic, False, value_type, timestamp=timestamp)
        self.stages.append(stage)
        return Stream(self, stage, stage.root)

    def _free_id(self) -> str:
        """The default id of the next stage: ``s<n>``, the first one no stage has taken."""
        used = {s.id for s in self.stages}
        n = len(self.stages)
        while f"s{n}" in used:
            n += 1
        return f"s{n}"

    def table(
        self,
        topic: str,
        *,
        value_type: Any = None,
        global_: bool = False,
        versions: int | None = None,
        name: str | None = None,
    ) -> Table:
        """A table over the keyed topic ``topic``: the latest value per key (an entry whose
        payload is JSON ``null`` deletes the key), or with ``versions`` the newest ``versions``
        values per key by event time (for ``join_asof``). Its state lives beside each partition
        of ``topic``; joins read the partition holding the record's key.

        A join against a table that is not ``global_`` requires the stream's topic to have
        the table's partition count (co-partitioned, checked at start); ``global_=True``
        joins from any partitioning."""
        validate_name(topic)
        if versions is not None and (not isinstance(versions, int) or versions < 1):
            raise InvalidArgument(
                f"table {topic!r}: versions must be a positive int, got {versions!r}"
            )
        if any(s.topic == topic for s in self.stages):
            raise InvalidArgument(f"job {self.name!r} reads topic {topic!r} twice; read it once")
        vtype = value_type if value_type is None else Optional[value_type]  # noqa: UP045 - a runtime type
        stage = Stage(self.name, self._free_id(), topic, False, vtype)
        self.stages.append(stage)
        spec = self.declare_store(stage, name or f"table-{topic}", "value", None)
        stage.root.next.append(TableUpdate(spec, versions))
        return Table(self, stage, spec, value_type, versions, global_)

    def new_stage(self, *, internal: bool, name: str | None = None) -> Stage:
        """A stage reading a new internal topic of this job (for ``key_by`` and ``merge``)."""
        stage_id = validate_name(name, "stage") if name is not None else self._free_id()
        if any(s.id == stage_id for s in self.stages):
            raise InvalidArgument(f"job {self.name!r} already has a stage named {stage_id!r}")
        topic = validate_name(f"{self.name}.{stage_id}.repartition", "internal topic")
        stage = Stage(self.name, stage_id, topic, internal)
        self.stages.append(stage)
        return stage

    def declare_store(
        self,
        stage: Stage,
        name: str,
        kind: StoreKind,
        ttl: float | timedelta | None,
        ttl_millis: int | None = None,
    ) -> StoreSpec:
        """Declare state store ``name`` (unique in the job) for operators of ``stage``."""
        if name in self.stores:
            raise InvalidArgument(
                f"job {self.name!r} already has a state store named {name!r}; name each "
                "stateful operator differently (name=...)"
            )
        if kind not in ("value", "map", "list"):
            raise InvalidArgument(f"state store {name!r}: kind must be value, map or list")
        spec = StoreSpec(name, kind, ttl_millis if ttl_millis is not None else ttl_ms(ttl))
        self.stores[name] = spec
        stage.stores[name] = spec
        return spec

    def validate(self) -> None:
        """Raise :class:`~redis_streaming.InvalidArgument` for a job that cannot run."""
        if not self.stages:
            raise InvalidArgument(f"job {self.name!r} has no source; add job.source(topic)")
        for stage in self.stages:
            if not stage.root.next:
                raise InvalidArgument(
                    f"job {self.name!r}: the stream of {stage.topic!r} has no operator"
                )

    async def run(
        self,
        redis: Any,
        options: MQOptions | None = None,
        *,
        runtime: RuntimeOptions | None = None,
        metrics: Metrics | None = None,
        consumer_id: str | None = None,
        clock: Clock | None = None,
    ) -> JobHandle:
        """Start the job's tasks in this process and return its handle (stop it with
        ``await handle.stop()``). Any number of processes may run the same job: they share its
        partitions through the consumer groups' leases. Raises
        :class:`~redis_streaming.InvalidArgument` before any I/O when the job is invalid or
        a job of the same name runs in this process on the same namespace.

        ``clock``: the wall clock of the job's tasks (an object with ``now_ms()``, epoch ms):
        idle timeouts, wall-clock timers, processing-time windows and state TTLs follow it.
        Default: real time. Tests pass a :class:`~redis_streaming.testing.ManualClock`
        (docs/testing-jobs.md)."""
        handle = JobHandle(self, redis, options, runtime, metrics, consumer_id, clock)
        await handle.start()
        return handle

    def __repr__(self) -> str:
        return f"Job({self.name!r}, stages={[s.group for s in self.stages]})"
