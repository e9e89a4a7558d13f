"""The consumer: subscriptions of handlers to topics in consumer groups."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
from typing import TYPE_CHECKING, Any, Literal

from redis_streaming._redis.background import Lifecycle
from redis_streaming.cluster import ready
from redis_streaming.errors import ConfigurationError
from redis_streaming.metrics import Metrics, default_metrics
from redis_streaming.mq.consume._traced import TracedSubscription
from redis_streaming.mq.consume.coordinator import GroupCoordinator
from redis_streaming.mq.consume.subscription import (
    BatchHandler,
    Filter,
    Handler,
    Subscription,
    SubscriptionState,
    is_async_callable,
)
from redis_streaming.mq.keys import validate_name
from redis_streaming.mq.maintenance.delayed import OwnedDelayedMover
from redis_streaming.mq.options import MQOptions, RetryPolicy
from redis_streaming.ratelimit import RateLimit

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ["Consumer", "default_consumer_id"]

log = logging.getLogger(__name__)


def default_consumer_id() -> str:
    """``<host>-<pid>-<random>``: unique per process, readable in ``XINFO CONSUMERS``."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:100] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class Consumer(Lifecycle):
    """Runs handlers for subscribed topics, sharing partitions with the group's other members.

    At least once: a message is acknowledged only after its handler returned (or it was
    scheduled for retry or dead-lettered); within a partition, handlers run one at a time in
    order. Handlers are ``async def handler(message)`` or plain functions (run in a worker
    thread); raising retries per the subscription's policy. Redis outages never end it: every
    loop backs off and resumes. See docs/concepts.md, "Consumers, membership and leases" and
    "Delivery guarantees"; ``metrics`` and ``tracer``: docs/metrics.md. ``async with consumer:``
    starts it and stops it on the way out, also when the block raises.
    """

    def __init__(
        self,
        redis: Any,
        options: MQOptions | None = None,
        consumer_id: str | None = None,
        *,
        metrics: Metrics | None = None,
        tracer: Tracer | None = None,
        move_delayed: bool = True,
    ) -> None:
        """``move_delayed``: move producer-delayed messages of the partitions this consumer
        owns when they are due (one task, one round trip per pass for all of them). Turn it off
        where a :class:`~redis_streaming.DelayedMover` covers the topics anyway (the starter
        runs one in every application)."""
        self.redis = redis
        self.metrics = metrics or default_metrics()
        self.tracer = tracer
        self.options = options or MQOptions()
        self.consumer_id = validate_name(consumer_id or default_consumer_id(), "consumer id")
        self._subs: dict[tuple[str, str], Subscription] = {}
        self._coordinators: dict[tuple[str, str], GroupCoordinator] = {}
        self.delayed_mover = (
            OwnedDelayedMover(redis, self.options, self._owned_partitions) if move_delayed else None
        )
        self.running = False

    def _owned_partitions(self) -> list[tuple[str, int, int]]:
        """(topic, partition, retention max length) of every partition owned in some group."""
        owned: dict[tuple[str, int], int] = {}
        for c in self._coordinators.values():
            for p in c.workers:
                owned[(c.sub.topic, p)] = c.retention_max_len
        return [(topic, p, maxlen) for (topic, p), maxlen in owned.items()]

    @property
    def subscriptions(self) -> list[Subscription]:
        """All subscriptions, in the order they were made."""
        return list(self._subs.values())

    def subscribe(
        self,
        topic: str,
        handler: Handler | BatchHandler,
        *,
        group: str,
        retry: RetryPolicy | None = None,
        start: Literal["earliest", "latest"] = "earliest",
        batch_size: int | None = None,
        id: str | None = None,
        rate_limit: str | RateLimit | None = None,
        batch: bool = False,
        filter: Filter | None = None,
    ) -> Subscription:
        """Subscribe ``handler`` to ``topic`` as a member of ``group``.

        ``start`` applies when the group is first created on a partition: ``"earliest"`` sees
        the backlog, ``"latest"`` only messages sent afterwards. ``retry`` defaults to
        ``mq.retry``, ``batch_size`` to ``mq.batch_size``. May be called while running.

        ``rate_limit`` (``"100/s"``, ``"20/min"``, ``"5/100ms, burst=5"``, a
        :class:`~redis_streaming.RateLimit`): at most that many entries handled, over all
        consumers of ``group`` on ``topic`` together (one limiter per topic and group). Over
        the limit, partition workers wait their turn before handling the next entry and read
        no more meanwhile; nothing is dropped, leases are kept, and pause and stop act at
        once. A bad spec is a :class:`~redis_streaming.ConfigurationError` here.

        ``batch=True``: the handler takes a ``list[Message]``, up to ``batch_size`` messages of
        one read (or one claim) of a partition, in order. Returning acknowledges them all;
        raising retries or dead-letters each member per ``retry``, as if each had raised that
        exception; raising :class:`~redis_streaming.BatchFailed` does so for the members it
        names and acknowledges the others. Undecodable and poison entries are dead-lettered
        before the call and are not in the list. See docs/listeners.md, "Batch listeners".

        ``filter``: a plain function of the :class:`~redis_streaming.Message` (headers, key,
        payload) called on the event loop before the handler; when it returns false the
        message is acknowledged without a handler call and counted in
        ``Subscription.filtered``. A filter that raises fails the message as a raising
        handler would (retry, then dead letter). In batch mode it runs on each member and the
        skipped ones leave the batch.
        """
        validate_name(topic, "topic")
        validate_name(group, "group")
        if not callable(handler):
            raise ConfigurationError(f"handler for {topic!r} must be callable, got {handler!r}")
        if filter is not None and (not callable(filter) or is_async_callable(filter)):
            raise ConfigurationError(
                f"filter for {topic!r} must be a plain (not async) function of the Message "
                f"returning a bool, got {filter!r}; e.g. filter=lambda m: m.headers.get("
                "'type') == 'order'"
            )
        if start not in ("earliest", "latest"):
            raise ConfigurationError(f"start must be 'earliest' or 'latest', got {start!r}")
        limit = None if rate_limit is None else RateLimit.parse(rate_limit)
        if batch_size is not None and not 1 <= batch_size <= 10_000:
            raise ConfigurationError(f"batch_size must be 1..10000, got {batch_size}")
        if (topic, group) in self._subs:
            raise ConfigurationError(
                f"{topic!r} already has a subscription in group {group!r} on this consumer; "
                "use one handler per topic and group (or another group)"
            )
        settings: dict[str, Any] = {
            "id": id or f"{topic}:{group}",
            "retry": retry or self.options.retry,
            "start": start,
            "batch_size": batch_size or self.options.batch_size,
            "rate_limit": limit,
            "batch": bool(batch),
            "filter": filter,
        }
        if self.tracer is None:
            sub = Subscription(topic, group, handler, **settings)
        else:  # its handler calls run in spans; the hot path is untouched without a tracer
            sub = TracedSubscription(
                topic, group, handler, tracer=self.tracer, consumer_id=self.consumer_id, **settings
            )
        self._subs[(topic, group)] = sub
        if self.running:
            self._start_one(sub)
        return sub

    def _start_one(self, sub: Subscription) -> None:
        coordinator = GroupCoordinator(
            self.redis, self.options, sub, self.consumer_id, metrics=self.metrics
        )
        self._coordinators[(sub.topic, sub.group)] = coordinator
        sub.state = SubscriptionState.PAUSED if sub.paused else SubscriptionState.RUNNING
        coordinator.start()

    async def start(self) -> None:
        """Start consuming every subscription. Returns at once; work goes on in tasks."""
        if self.running:
            return
        try:
            await ready(self.redis)  # a cluster client's slot map, before the workers share it
        except Exception as exc:  # unreachable now: the workers retry, loading it on first use
            log.warning(
                "consumer %s: could not load the cluster's slot map: %s", self.consumer_id, exc
            )
        self.running = True
        for sub in self._subs.values():
            self._start_one(sub)
        if self.delayed_mover is not None:
            self.delayed_mover.start()

    async def stop(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - the contract
        """Stop gracefully: stop reading, wait for running handlers up to ``timeout`` seconds
        (default ``mq.shutdown_timeout_s``), acknowledge what finished, release leases and leave
        the groups. Entries read but not finished are redelivered to the next owner."""
        if not self.running:
            return
        self.running = False
        timeout_s = self.options.shutdown_timeout_s if timeout is None else timeout
        coordinators = list(self._coordinators.values())
        self._coordinators.clear()
        await asyncio.gather(*(c.stop(timeout_s) for c in coordinators))
        if self.delayed_mover is not None:
            await self.delayed_mover.stop()
        for sub in self._subs.values():
            sub.state = SubscriptionState.STOPPED

    def subscription(self, topic: str, group: str) -> Subscription:
        """The subscription of ``topic`` in ``group``; ``KeyError`` if there is none."""
        try:
            return self._subs[(topic, group)]
        except KeyError:
            raise KeyError(f"no subscription for topic {topic!r} in group {group!r}") from None

    def pause(self, topic: str, group: str) -> None:
        """Call the handler of ``topic`` in ``group`` no more until :meth:`resume` (one already
        running finishes); partitions stay owned. See :meth:`Subscription.pause`."""
        self.subscription(topic, group).pause()

    def resume(self, topic: str, group: str) -> None:
        """Take messages again after :meth:`pause`."""
        self.subscription(topic, group).resume()

    @property
    def healthy(self) -> bool:
        """True while running and every subscription's last coordination round succeeded."""
        return self.running and all(c.last_tick_ok for c in self._coordinators.values())
