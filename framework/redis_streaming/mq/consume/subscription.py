"""A subscription of one handler to one topic in one consumer group, and its observable state."""

from __future__ import annotations

import asyncio
import enum
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from redis_streaming._redis.background import wait_event
from redis_streaming.mq.options import RetryPolicy
from redis_streaming.mq.wire.message import Message
from redis_streaming.ratelimit import RateLimit

__all__ = ["BatchHandler", "Filter", "Handler", "Subscription", "SubscriptionState"]

Handler = Callable[[Message], Awaitable[None]] | Callable[[Message], None]
BatchHandler = Callable[[list[Message]], Awaitable[None]] | Callable[[list[Message]], None]
Filter = Callable[[Message], bool]


class SubscriptionState(enum.StrEnum):
    """Lifecycle of a subscription."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


def is_async_callable(fn: Any) -> bool:
    """True for coroutine functions and objects whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


class Subscription:
    """One handler on one topic for one group, as returned by ``Consumer.subscribe``.

    The counters and fields are live state for health checks and metrics: ``owned_partitions``
    (sorted), ``in_flight`` (handlers running now), ``processed`` (handled successfully),
    ``failed`` (handler calls that raised), ``retried`` (retries scheduled or performed),
    ``dead_lettered`` (entries sent to the dead-letter stream), ``filtered`` (entries the
    filter skipped: acknowledged without a handler call), ``last_error`` and ``last_error_at``
    (epoch seconds). A batch subscription counts members, not calls, in ``in_flight``,
    ``processed`` and ``failed``. ``rate_limit``: the group's limit on handled entries (shared
    by all its consumers), or None; ``batch``: the handler takes lists of messages;
    ``filter``: the predicate deciding which messages reach the handler, or None.
    """

    def __init__(
        self,
        topic: str,
        group: str,
        handler: Handler | BatchHandler,
        *,
        id: str,
        retry: RetryPolicy,
        start: Literal["earliest", "latest"],
        batch_size: int,
        rate_limit: RateLimit | None = None,
        batch: bool = False,
        filter: Filter | None = None,
    ) -> None:
        self.topic = topic
        self.group = group
        self.handler: Any = handler  # a Handler, or a BatchHandler when ``batch``
        self.id = id
        self.retry = retry
        self.start = start
        self.batch_size = batch_size
        self.rate_limit = rate_limit
        self.batch = batch
        self.filter = filter
        self.is_async = is_async_callable(handler)
        self.state = SubscriptionState.CREATED
        self.owned: set[int] = set()
        self.in_flight = 0
        self.processed = 0
        self.failed = 0
        self.retried = 0
        self.dead_lettered = 0
        self.filtered = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._resumed = asyncio.Event()
        self._resumed.set()

    @property
    def owned_partitions(self) -> list[int]:
        """Partitions whose lease this consumer holds for this subscription, sorted."""
        return sorted(self.owned)

    @property
    def paused(self) -> bool:
        """True while paused: leases are kept, no handler is called."""
        return not self._resumed.is_set()

    def pause(self) -> None:
        """Call no handler from now on (one already running finishes) until :meth:`resume`.

        Workers check before every entry: entries already read are held, in order, and handled
        after the resume. Partitions stay owned: their leases are renewed, however long the
        pause lasts.
        """
        self._resumed.clear()
        if self.state is SubscriptionState.RUNNING:
            self.state = SubscriptionState.PAUSED

    def resume(self) -> None:
        """Call the handler again, starting with the entries held during the pause."""
        self._resumed.set()
        if self.state is SubscriptionState.PAUSED:
            self.state = SubscriptionState.RUNNING

    async def wait_resumed(self, timeout_s: float) -> bool:
        """Wait until resumed, at most ``timeout_s``; returns whether it is resumed."""
        return await wait_event(self._resumed, timeout_s)

    def record_error(self, exc: BaseException) -> None:
        """Remember the latest error for health reporting."""
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.last_error_at = time.time()

    async def call(self, message: Message) -> None:
        """Run the handler: awaited if async, else in a worker thread."""
        if self.is_async:
            await self.handler(message)
        else:
            await asyncio.to_thread(self.handler, message)

    async def call_batch(self, messages: list[Message]) -> None:
        """Run a batch handler with ``messages``: awaited if async, else in a worker thread."""
        if self.is_async:
            await self.handler(messages)
        else:
            await asyncio.to_thread(self.handler, messages)

    def __repr__(self) -> str:
        return (
            f"Subscription(topic={self.topic!r}, group={self.group!r}, id={self.id!r}, "
            f"state={self.state.value}, owned={self.owned_partitions})"
        )
