"""The sink protocol and the batches sinks receive; :class:`CallableSink` (at-least-once)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from redis_streaming.errors import ConfigurationError, InvalidArgument
from redis_streaming.ratelimit.keys import validate_limiter_name
from redis_streaming.ratelimit.spec import RateLimit

__all__ = ["CallableSink", "Sink", "SinkBatch", "SinkRecord", "sink_rate_limit", "stream_id"]


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One record reaching a sink: its ``key`` (None when unkeyed), ``value``, event time
    ``ts`` (epoch ms) and ``entry_id``, the id of the input entry it came from (``None`` for
    records emitted by timers of a batch of no entries)."""

    key: str | None
    value: Any
    ts: int
    entry_id: str | None


@dataclass(frozen=True, slots=True)
class SinkBatch:
    """The records one batch of a stage's task sends to one sink, in entry order.

    ``job``, ``stage`` (the stage id, as in ``<job>.<stage>``), ``topic`` and ``partition``
    name the task (its input partition); ``last_id`` is the id of the batch's last input
    entry (``None`` for a batch of no entries). A task's batches come in ``last_id`` order;
    after a crash a batch may come again (the same or a longer one: its entries were not
    committed), never out of order for one ``(job, stage, topic, partition)``.
    """

    job: str
    stage: str
    topic: str
    partition: int
    records: Sequence[SinkRecord]
    last_id: str | None


@runtime_checkable
class Sink(Protocol):
    """Where a stream's records leave the job: ``stream.sink(sink)``.

    The task calls ``await sink.write(batch)`` once per batch that has records for it, after
    the batch's operators ran and before its commit, and reads the next batch only after it
    returns: a slow sink slows the stage down (backpressure), nothing is buffered beyond the
    batch. A sink that raises gets the same batch again, with capped exponential backoff,
    until it succeeds or the task stops (the batch then stays uncommitted for the next owner):
    records are never dead-lettered because of a sink. A batch whose commit fails after the
    write is written again, so a sink is at-least-once unless it deduplicates by
    ``(job, stage, topic, partition)`` and ``entry_id`` (as :class:`PostgresSink` does).

    A sink may have a ``rate_limit`` attribute (a :class:`~redis_streaming.ratelimit.RateLimit`
    or None) and a ``rate_limit_name`` (str or None): see :func:`sink_rate_limit`.
    """

    async def write(self, batch: SinkBatch) -> None:
        """Write ``batch``'s records; raise to have the batch written again later."""
        ...


class CallableSink:
    """A sink calling ``fn(records)`` (a list of :class:`SinkRecord`) once per batch: sync
    functions inline (keep them quick), async ones awaited. At-least-once: a batch whose
    commit fails (a crash, a lost lease) is passed again, by this process or the next owner."""

    __slots__ = ("fn", "is_async", "rate_limit", "rate_limit_name")

    def __init__(
        self,
        fn: Callable[[list[SinkRecord]], Any],
        *,
        rate_limit: str | RateLimit | None = None,
        rate_limit_name: str | None = None,
    ) -> None:
        if not callable(fn):
            raise InvalidArgument(f"CallableSink needs a function, got {fn!r}")
        self.fn = fn
        self.rate_limit, self.rate_limit_name = sink_rate_limit(rate_limit, rate_limit_name)
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
        )

    async def write(self, batch: SinkBatch) -> None:
        """Call the function with the batch's records."""
        result = self.fn(list(batch.records))
        if self.is_async or inspect.isawaitable(result):
            await result

    def __repr__(self) -> str:
        return f"CallableSink({getattr(self.fn, '__qualname__', self.fn)!r})"


def sink_rate_limit(
    spec: str | RateLimit | None, name: str | None
) -> tuple[RateLimit | None, str | None]:
    """A sink's ``rate_limit=`` (``"100/s"``, ``"20/min, burst=50"``, ...: see
    :meth:`RateLimit.parse`) and ``rate_limit_name=``, checked when the sink is built (raises
    :class:`~redis_streaming.ConfigurationError` saying what to write instead).

    With a limit the task takes one permit per record from the limiter before writing a
    batch (in steps of at most the limit's burst), waiting for them before the write: the
    stage reads on only after that (backpressure), nothing is dropped, and a stop ends the
    wait with the batch uncommitted (pending for the next owner). The limiter is shared by
    every task and process of the job: its name is ``rate_limit_name`` if given (to share one
    limit among sinks or jobs), else ``sink:<job>:<sink name>`` (the sink's ``name``, or
    ``<stage>.<its index among the stage's sinks>``)."""
    if name is not None:
        if spec is None:
            raise ConfigurationError(f"rate_limit_name={name!r} needs a rate_limit")
        validate_limiter_name(name)
    return (None if spec is None else RateLimit.parse(spec)), name


def stream_id(entry_id: str) -> tuple[int, int]:
    """A stream entry id (``"<ms>-<seq>"``) as numbers, to compare ids by their order."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
