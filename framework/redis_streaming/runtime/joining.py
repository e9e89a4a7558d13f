"""Tables and stream-table joins.

A table is a stage of the job that reads a keyed topic into a store: the latest value per key
(a ``null`` payload deletes the key), or with ``versions`` the last versions per key by event
time, for as-of joins. Its store lives beside each partition of the table's topic. A join looks
up the record's key in the table partition that holds it (the key's partition, as producers
hash it), from the table's last commits: one pipelined read per batch for the batch's keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis_streaming.errors import InvalidArgument
from redis_streaming.join.versions import as_of, put_version
from redis_streaming.runtime.graph import Stage
from redis_streaming.runtime.operators import Node, is_async
from redis_streaming.runtime.records import Record
from redis_streaming.state.cache import ABSENT
from redis_streaming.state.stores import StoreSpec

if TYPE_CHECKING:
    from redis_streaming.runtime.context import BatchRun
    from redis_streaming.runtime.job import Job

__all__ = ["JoinAsOf", "JoinTable", "Table", "TableUpdate"]

Joiner = Callable[[Any, Any], Any]


def _pair(value: Any, other: Any) -> Any:
    return [value, other]


class Table:
    """A table of job ``job`` over ``topic`` (see :meth:`Job.table`)."""

    def __init__(
        self, job: Job, stage: Stage, spec: StoreSpec, value_type: Any, versions: int | None,
        global_: bool,
    ) -> None:  # fmt: skip
        self.job = job
        self.stage = stage
        self.spec = spec
        self.value_type = value_type
        self.versions = versions
        self.global_ = global_

    @property
    def topic(self) -> str:
        """The table's topic."""
        return self.stage.topic

    @property
    def name(self) -> str:
        """The table's store name."""
        return self.spec.name

    def __repr__(self) -> str:
        return f"Table({self.topic!r}, store={self.name!r})"


class TableUpdate(Node):
    """The table stage's operator: upsert or delete the key's value (or add a version)."""

    __slots__ = ("spec", "versions")

    def __init__(self, spec: StoreSpec, versions: int | None) -> None:
        super().__init__()
        self.spec = spec
        self.versions = versions

    async def push(self, run: BatchRun, rec: Record) -> None:
        field = run.key_bytes(rec.key)
        if self.versions is None:
            run.state.set(self.spec.name, field, ABSENT if rec.value is None else rec.value)
            return
        history = run.state.get(self.spec.name, field)
        run.state.set(self.spec.name, field, put_version(history, rec.ts, rec.value, self.versions))


class _Lookup(Node):
    __slots__ = ("how", "joiner", "joiner_async", "table")

    def __init__(self, table: Table, how: str, joiner: Joiner | None) -> None:
        super().__init__()
        if how not in ("inner", "left"):
            raise InvalidArgument(f"a table join's how is 'inner' or 'left', got {how!r}")
        if joiner is not None and not callable(joiner):
            raise InvalidArgument(f"joiner must be a function (value, table_value), got {joiner!r}")
        self.table = table
        self.how = how
        self.joiner = joiner or _pair
        self.joiner_async = is_async(self.joiner)

    async def _emit(self, run: BatchRun, rec: Record, other: Any) -> None:
        if other is None and self.how == "inner":
            return
        joined = self.joiner(rec.value, other)
        if self.joiner_async:
            joined = await joined
        await self.forward(run, rec.with_value(joined))


class JoinTable(_Lookup):
    """Each record with the table's current value for its key (``None`` for ``how="left"``
    when the key is absent; dropped for ``"inner"``)."""

    __slots__ = ()

    async def push(self, run: BatchRun, rec: Record) -> None:
        await self._emit(run, rec, run.lookup(self.table, rec.key))


class JoinAsOf(_Lookup):
    """Each record with the table's value as of the record's event time."""

    __slots__ = ()

    async def push(self, run: BatchRun, rec: Record) -> None:
        history = run.lookup(self.table, rec.key)
        await self._emit(run, rec, as_of(history, rec.ts))
