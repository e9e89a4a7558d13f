"""What operators see of the batch they run in: its state overlay, its outputs, and the
context handed to ``process`` functions."""

from __future__ import annotations

from typing import Any

from redis_streaming.errors import InvalidArgument
from redis_streaming.runtime.operators import Process
from redis_streaming.runtime.records import Record, output_fields
from redis_streaming.state.batch import BatchState
from redis_streaming.state.codec import encode_key
from redis_streaming.state.stores import ListState, MapState, StoreSpec, ValueState

__all__ = ["BatchRun", "Output", "ProcessContext"]


class Output:
    """One output of a batch: the target topic, its key and the entry's fields."""

    __slots__ = ("fields", "key", "topic")

    def __init__(self, topic: str, key: str | None, fields: list[Any]) -> None:
        self.topic = topic
        self.key = key
        self.fields = fields


class BatchRun:
    """One run of a batch through a stage's operators: the state overlay and the outputs."""

    __slots__ = ("_keys", "max_bytes", "outputs", "state")

    def __init__(self, state: BatchState, max_bytes: int) -> None:
        self.state = state
        self.outputs: list[Output] = []
        self.max_bytes = max_bytes
        self._keys: dict[str | None, bytes] = {}

    def key_bytes(self, key: str | None) -> bytes:
        """The state field of a record key (cached for the batch)."""
        kb = self._keys.get(key)
        if kb is None:
            kb = self._keys[key] = encode_key(key)
        return kb

    def output(self, topic: str, key: str | None, value: Any, ts: int, *, internal: bool) -> None:
        """Queue an output for the commit."""
        fields = output_fields(
            value, key, ts, internal=internal, max_bytes=self.max_bytes, topic=topic
        )
        self.outputs.append(Output(topic, key, fields))

    def savepoint(self) -> tuple[int, int]:
        """A mark to :meth:`rollback` to (before each record)."""
        return self.state.savepoint(), len(self.outputs)

    def rollback(self, mark: tuple[int, int]) -> None:
        """Undo the state writes and outputs since ``mark`` (a record whose function raised)."""
        self.state.rollback(mark[0])
        del self.outputs[mark[1] :]

    def process_context(self, node: Process, rec: Record) -> ProcessContext:
        """The ``ctx`` of a ``process`` function for ``rec``."""
        return ProcessContext(self, node.stores, rec)


class ProcessContext:
    """What a ``process(fn)`` function gets besides the value: the record's key and event
    time, its state stores, and ``emit`` to pass values on (after the function returns)."""

    __slots__ = ("_run", "_stores", "emitted", "key", "record", "timestamp")

    def __init__(self, run: BatchRun, stores: dict[str, StoreSpec], rec: Record) -> None:
        self._run = run
        self._stores = stores
        self.record = rec
        self.key = rec.key
        self.timestamp = rec.ts
        self.emitted: list[Record] = []

    def state(self, name: str) -> Any:
        """The store ``name`` (declared in ``process(fn, stores=...)``) for this record's key:
        a :class:`ValueState`, :class:`MapState` or :class:`ListState`."""
        spec = self._stores.get(name)
        if spec is None:
            raise InvalidArgument(
                f"this process() declares no state store {name!r}; declare it with "
                f"process(fn, stores=[{name!r}]) (declared: {sorted(self._stores)})"
            )
        key = self._run.key_bytes(self.key)
        if spec.kind == "map":
            return MapState(self._run.state, spec, key)
        if spec.kind == "list":
            return ListState(self._run.state, spec, key)
        return ValueState(self._run.state, spec, key)

    def emit(self, value: Any) -> None:
        """Pass ``value`` on, with this record's key and time (to re-key, ``key_by`` after)."""
        self.emitted.append(Record(self.key, value, self.timestamp))
