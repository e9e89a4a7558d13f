"""What operators see of the batch they run in: its state overlay, its outputs, and the
context handed to ``process`` functions."""

from __future__ import annotations

from typing import Any

from redis_streaming.errors import InvalidArgument
from redis_streaming.runtime.operators import Process
from redis_streaming.runtime.records import Record, output_fields
from redis_streaming.state.batch import BatchState
from redis_streaming.state.codec import encode_key
from redis_streaming.state.stores import ListState, MapState, ValueState
from redis_streaming.window.clock import NEVER, BatchClock, PartitionClock
from redis_streaming.window.timers import BatchTimers, TimerIndex

__all__ = ["BatchRun", "Output", "ProcessContext"]


class Output:
    """One output of a batch: the target topic, its key and the entry's fields."""

    __slots__ = ("fields", "key", "topic")

    def __init__(self, topic: str, key: str | None, fields: list[Any]) -> None:
        self.topic = topic
        self.key = key
        self.fields = fields


class BatchRun:
    """One run of a batch through a stage's operators: the state overlay, the outputs, the
    partition's event-time clock and timers as the batch moves them, and window counts
    (``counts``: windows opened, closed, late records)."""

    __slots__ = (
        "_keys", "clock", "counts", "entry_id", "lookups", "max_bytes", "now_ms", "outputs",
        "sinked", "state", "timers", "wall_timers", "writes",
    )  # fmt: skip

    def __init__(
        self,
        state: BatchState,
        max_bytes: int,
        clock: BatchClock | None = None,
        timers: BatchTimers | None = None,
        wall_timers: BatchTimers | None = None,
        now_ms: int = 0,
    ) -> None:
        if clock is None:  # a batch of a stage without event time (or built by hand)
            clock = BatchClock(PartitionClock(0, None, None, NEVER, now_ms))
        self.wall_timers = wall_timers or BatchTimers(TimerIndex())
        timers = timers or BatchTimers(TimerIndex())
        self.state = state
        self.outputs: list[Output] = []
        self.max_bytes = max_bytes
        self.clock = clock
        self.timers = timers
        self.now_ms = now_ms
        self.counts = [0, 0, 0]
        self.lookups: dict[tuple[str, str | None], Any] = {}
        self._keys: dict[str | None, bytes] = {}
        # Sinks (runtime/sinking.py): the input entry being run, the Redis sink writes for the
        # commit (command, key, arguments) and the records for other sinks, in order.
        self.entry_id: bytes | None = None
        self.writes: list[tuple[str, str, list[bytes]]] = []
        self.sinked: list[tuple[Any, Any]] = []

    def key_bytes(self, key: str | None) -> bytes:
        """The state field of a record key (cached for the batch)."""
        kb = self._keys.get(key)
        if kb is None:
            kb = self._keys[key] = encode_key(key)
        return kb

    def output(
        self,
        topic: str,
        key: str | None,
        value: Any,
        ts: int,
        *,
        internal: bool,
        side: str | None = None,
    ) -> None:
        """Queue an output for the commit."""
        fields = output_fields(
            value, key, ts, internal=internal, max_bytes=self.max_bytes, topic=topic, side=side
        )
        self.outputs.append(Output(topic, key, fields))

    def savepoint(self) -> tuple[Any, ...]:
        """A mark to :meth:`rollback` to (before each record)."""
        clock = self.clock
        return (self.state.savepoint(), len(self.outputs), self.timers.savepoint(),
                clock.max_ts, clock.floor, list(self.counts),
                self.wall_timers.savepoint(), len(self.writes), len(self.sinked))  # fmt: skip

    def rollback(self, mark: tuple[Any, ...]) -> None:
        """Undo the state writes, outputs, timers, clock moves and sink records since ``mark``
        (a record whose function raised)."""
        self.state.rollback(mark[0])
        del self.outputs[mark[1] :]
        self.timers.rollback(mark[2])
        self.clock.max_ts, self.clock.floor = mark[3], mark[4]
        self.counts = list(mark[5])
        self.wall_timers.rollback(mark[6])
        del self.writes[mark[7] :]
        del self.sinked[mark[8] :]

    def lookup(self, table: Any, key: str | None) -> Any:
        """The value of ``key`` in ``table`` as loaded for this batch (None: absent)."""
        return self.lookups.get((table.name, key))

    def timer_member(self, op: str, key: str | None, name: str) -> bytes:
        """The member of a ``process`` timer in the timer sets."""
        return encode_key([op, key, name])

    def process_context(self, node: Process, rec: Record) -> ProcessContext:
        """The ``ctx`` of a ``process`` function for ``rec``."""
        return ProcessContext(self, node, rec)


class ProcessContext:
    """What a ``process(fn)`` function gets besides the value: the record's key and event
    time, its state stores, and ``emit`` to pass values on (after the function returns)."""

    __slots__ = ("_node", "_run", "_stores", "emitted", "key", "record", "timestamp")

    def __init__(self, run: BatchRun, node: Process, rec: Record) -> None:
        self._run = run
        self._node = node
        self._stores = node.stores
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

    @property
    def timers(self) -> Timers:
        """This key's timers (``process(fn, on_timer=...)``)."""
        if not self._node.op:
            raise InvalidArgument(
                "this process() has no on_timer; give it one to set timers: "
                "process(fn, on_timer=handle_timer)"
            )
        return Timers(self._run, self._node.op, self.key)

    @property
    def watermark(self) -> int:
        """The partition's watermark (epoch ms) as of the records before this one."""
        return self._run.clock.watermark

    @property
    def now_ms(self) -> int:
        """The wall clock (epoch ms) as of this batch, as the job's clock tells it (real time,
        or a test's :class:`~redis_streaming.testing.ManualClock`): set wall-clock timers from
        it, ``ctx.timers.at_wall_time(ctx.now_ms + 60_000)``."""
        return self._run.now_ms

    def emit(self, value: Any) -> None:
        """Pass ``value`` on, with this record's key and time (to re-key, ``key_by`` after)."""
        self.emitted.append(Record(self.key, value, self.timestamp))


class Timers:
    """The timers of one key of one ``process`` operator. Each fires once (its effects and
    its removal commit together), survives restarts and moves with the partition. Setting a
    timer of the same name again moves it."""

    __slots__ = ("_key", "_op", "_run")

    def __init__(self, run: BatchRun, op: str, key: str | None) -> None:
        self._run = run
        self._op = op
        self._key = key

    def at_event_time(self, ts_ms: int, name: str = "") -> None:
        """Fire when the partition's watermark reaches ``ts_ms``."""
        self._run.timers.set(self._run.timer_member(self._op, self._key, name), int(ts_ms))

    def at_wall_time(self, epoch_ms: int, name: str = "") -> None:
        """Fire when the wall clock reaches ``epoch_ms`` (checked between batches, at least
        every ``block_ms``)."""
        self._run.wall_timers.set(self._run.timer_member(self._op, self._key, name), int(epoch_ms))

    def cancel(self, name: str = "") -> None:
        """Delete the timer ``name`` (both kinds; a no-op when none is set)."""
        member = self._run.timer_member(self._op, self._key, name)
        self._run.timers.set(member, None)
        self._run.wall_timers.set(member, None)
