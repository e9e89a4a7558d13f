"""Observable gauges (docs/design.md, "Metrics and tracing"): lag, pending entries, stream
lengths, scheduled retries, dead letters, owned leases and running handlers.

Gauge callbacks run at collection time (a Prometheus scrape, a periodic exporter), possibly on
another thread, so they never do I/O: the values read from Redis are cached by
:meth:`TopicGauges.refresh` (in the background every ``interval_s``), and the in-process values
(leases, in-flight handlers) are read from the consumer's subscriptions, which costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from opentelemetry.metrics import CallbackOptions, Observation

from redis_streaming._redis.background import BackgroundLoop
from redis_streaming._redis.backoff import Backoff
from redis_streaming._redis.errors import is_connection_error
from redis_streaming._redis.replies import as_text
from redis_streaming.errors import ConfigurationError, InvalidName
from redis_streaming.metrics.instruments import Metrics, default_metrics
from redis_streaming.mq.admin._describe import (
    groups_reply,
    queue_groups,
    unknown_lags,
    xinfo_lag,
)
from redis_streaming.mq.keys import Keys, validate_name
from redis_streaming.mq.options import MQOptions


class _Subscription(Protocol):
    topic: str
    group: str
    in_flight: int

    @property
    def owned_partitions(self) -> list[int]: ...


class SubscriptionSource(Protocol):
    """What the gauges read of a consumer (a :class:`~redis_streaming.Consumer` is one)."""

    consumer_id: str

    @property
    def subscriptions(self) -> Sequence[_Subscription]: ...


__all__ = ["SubscriptionSource", "TopicGauges"]

log = logging.getLogger(__name__)

LAG = "redis_streaming.partition.lag"
PENDING = "redis_streaming.partition.pending"
LENGTH = "redis_streaming.partition.length"
RETRY = "redis_streaming.retry.scheduled"
DLQ = "redis_streaming.dlq.length"
LEASES = "redis_streaming.leases.owned"
IN_FLIGHT = "redis_streaming.consumer.in_flight"

_GAUGES = (
    (LAG, "{message}", "Entries of a partition stream that a group has not read yet."),
    (PENDING, "{message}", "Entries of a partition stream delivered to a group, not acked."),
    (LENGTH, "{message}", "Entries in a partition stream."),
    (RETRY, "{message}", "Retries scheduled for a group on a partition and not yet due."),
    (DLQ, "{message}", "Entries in a topic's dead-letter stream."),
    (LEASES, "{partition}", "Partitions whose lease a consumer holds for a subscription."),
    (IN_FLIGHT, "{message}", "Handler calls of a subscription running now."),
)
_WALK = 5000  # entries one lag-counting script call walks per side (as Admin's)

Cache = dict[str, list[Observation]]


class _SharedGauges:
    """The observable gauges of one :class:`Metrics`, fed by every :class:`TopicGauges` on it.

    An OpenTelemetry meter registers an instrument name once: a second registration returns the
    first instrument and silently drops the new callbacks. So the gauges are registered once per
    ``Metrics`` and their callbacks ask each live ``TopicGauges`` (weakly referenced: a dropped
    one stops reporting) for its observations.
    """

    def __init__(self, metrics: Metrics) -> None:
        # Replaced, never mutated: callbacks may read it from the collecting thread.
        self.sources: tuple[weakref.ref[TopicGauges], ...] = ()
        for name, unit, description in _GAUGES:
            metrics.meter.create_observable_gauge(
                name, [self._callback(name)], unit=unit, description=description
            )

    def add(self, gauges: TopicGauges) -> None:
        self.sources = (*(r for r in self.sources if r() is not None), weakref.ref(gauges))

    def _callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            found: list[Observation] = []
            for ref in self.sources:
                gauges = ref()
                if gauges is not None:
                    found += gauges.observations(name)
            return found

        return observe


_shared: weakref.WeakKeyDictionary[Metrics, _SharedGauges] = weakref.WeakKeyDictionary()


def _shared_gauges(metrics: Metrics) -> _SharedGauges:
    shared = _shared.get(metrics)
    if shared is None:
        shared = _shared[metrics] = _SharedGauges(metrics)
    return shared


def _reply_or_raise(reply: Any) -> Any:
    """A reply of ``execute(raise_on_error=False)``, raised if it is an error."""
    if isinstance(reply, Exception):
        raise reply
    return reply


class TopicGauges(BackgroundLoop):
    """The observable gauges listed in docs/metrics.md, registered on ``metrics.meter``
    (default: :func:`~redis_streaming.metrics.default_metrics`), for the topics and groups
    ``consumer`` subscribes to and the extra ``topics`` (a callable asked at every refresh).

    Gauge callbacks must not do I/O, so the values from Redis (lag as
    :meth:`Admin.describe_topic <redis_streaming.Admin.describe_topic>` counts it, pending,
    lengths, scheduled retries, dead letters) are read by :meth:`refresh` in one pipelined round
    trip over at most ``max_partitions`` partitions (every ``interval_s`` after :meth:`start`)
    and cached; leases and running handlers are read from ``consumer`` at collection time. When
    Redis fails or takes longer than ``timeout_s``, the previous values stay (see
    :attr:`age_s`); after :meth:`stop` they are no longer reported. Several may share one
    ``Metrics``: each reports its own series.
    """

    def __init__(
        self,
        redis: Any,
        options: MQOptions | None = None,
        metrics: Metrics | None = None,
        *,
        consumer: SubscriptionSource | None = None,
        topics: Callable[[], Iterable[str]] | None = None,
        interval_s: float = 10.0,
        timeout_s: float = 2.0,
        max_partitions: int = 1024,
    ) -> None:
        super().__init__()
        for name, value in (("interval_s", interval_s), ("timeout_s", timeout_s)):
            if not value > 0:
                raise ConfigurationError(f"TopicGauges {name} must be > 0, got {value!r}")
        if max_partitions < 1:
            raise ConfigurationError(f"max_partitions must be >= 1, got {max_partitions!r}")
        self.redis = redis
        self.options = options or MQOptions()
        self.keys = Keys(self.options.namespace)
        self.consumer = consumer
        self.topics = topics
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.max_partitions = max_partitions
        self._cache: Cache = {}
        self._partitions: dict[str, int] = {}  # partition counts seen by the last refresh
        self._refreshed_at: float | None = None
        self._lock = asyncio.Lock()
        self._failing = False
        self._warned: set[str] = set()
        _shared_gauges(metrics or default_metrics()).add(self)

    # -- collection (synchronous, no I/O) ----------------------------------------------------

    def observations(self, name: str) -> list[Observation]:
        """The current observations of gauge ``name`` (cached or in-process values)."""
        if name in (LEASES, IN_FLIGHT):
            consumer = self.consumer
            if consumer is None:
                return []
            cid = consumer.consumer_id
            return [
                Observation(
                    len(sub.owned_partitions) if name == LEASES else sub.in_flight,
                    {"topic": sub.topic, "group": sub.group, "consumer": cid},
                )
                for sub in consumer.subscriptions
            ]
        return self._cache.get(name, [])

    @property
    def age_s(self) -> float:
        """Seconds since the last successful refresh (``inf`` before the first one)."""
        at = self._refreshed_at
        return math.inf if at is None else time.monotonic() - at

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Refresh now and then every ``interval_s`` in a background task (idempotent)."""
        self._launch("redis-streaming-gauges")

    async def stop(self) -> None:
        """Stop refreshing; the values read from Redis are no longer reported."""
        await super().stop()
        self._cache = {}
        self._refreshed_at = None

    async def _run(self) -> None:
        async def step() -> float:
            await self.refresh()  # never raises for Redis errors
            return self.interval_s

        await self._repeat("gauges", step, Backoff(), log)

    # -- refreshing --------------------------------------------------------------------------

    async def refresh(self, max_age_s: float = 0.0) -> bool:
        """Read the gauges' values from Redis unless the cache is younger than ``max_age_s``.

        Returns False, keeping the previous values, when Redis fails or does not answer within
        ``timeout_s`` (logged once per outage at WARNING); never raises for Redis errors.
        Concurrent calls share one read.
        """
        if self.age_s < max_age_s:
            return True
        async with self._lock:
            if self.age_s < max_age_s:
                return True
            try:
                async with asyncio.timeout(self.timeout_s):
                    cache = await self._read()
            except Exception as exc:
                self._failed(exc)
                return False
            self._cache = cache
            self._refreshed_at = time.monotonic()
            if self._failing:
                self._failing = False
                log.info("gauges: reading from Redis works again")
            return True

    def _failed(self, exc: Exception) -> None:
        if self._failing:
            log.debug("gauges: refresh failed again: %r", exc)
            return
        self._failing = True
        if isinstance(exc, TimeoutError):
            why = f"Redis did not answer within {self.timeout_s}s"
        elif is_connection_error(exc):
            why = f"Redis is unreachable ({type(exc).__name__}: {exc})"
        else:
            why = f"{type(exc).__name__}: {exc}"
        log.warning("gauges: could not refresh, keeping the previous values: %s", why)

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def _wanted(self) -> dict[str, list[str]]:
        """Topics to read, each with the groups subscribed to it (none for extra topics)."""
        wanted: dict[str, list[str]] = {}
        if self.consumer is not None:
            for sub in self.consumer.subscriptions:
                wanted.setdefault(sub.topic, []).append(sub.group)
        for topic in self.topics() if self.topics is not None else ():
            try:
                wanted.setdefault(validate_name(topic), [])
            except InvalidName as exc:
                self._warn_once(f"name:{topic}", "gauges: skipping topic: %s", exc)
        return wanted

    def _plan(self, wanted: dict[str, list[str]]) -> dict[str, int]:
        """Partitions to read per topic, by the counts last seen, within ``max_partitions``."""
        budget, plan = self.max_partitions, {}
        for topic in wanted:
            count = self._partitions.get(topic, 0)
            plan[topic] = min(count, budget)
            budget -= plan[topic]
            if plan[topic] < count:
                self._warn_once(
                    "cap", "gauges: reading only the first %d partitions (max_partitions); "
                    "topic %r and later ones are covered partly or not at all",
                    self.max_partitions, topic,
                )  # fmt: skip
        return plan

    async def _read(self) -> Cache:
        wanted = self._wanted()
        plan = self._plan(wanted)
        cache, counting = await self._read_plan(wanted, plan)
        if self._plan(wanted) != plan:  # a partition count changed since the last refresh
            cache, counting = await self._read_plan(wanted, self._plan(wanted))
        if counting:  # XINFO GROUPS gave no lag (after XDEL or XGROUP SETID): count it
            lags = await unknown_lags(self.redis, [job for job, _ in counting], _WALK)
            cache[LAG] += [
                Observation(lag, labels) for (_, labels), lag in zip(counting, lags, strict=True)
            ]
        return cache

    async def _read_plan(
        self, wanted: dict[str, list[str]], plan: dict[str, int]
    ) -> tuple[Cache, list[tuple[tuple[str, dict[str, Any], int], dict[str, Any]]]]:
        """One pipelined round trip over the planned partitions; updates the partition counts
        and returns the observations and the lags still to count."""
        pipe = self.redis.pipeline(transaction=False)
        for topic, count in plan.items():
            pipe.hget(self.keys.topic(topic), "partitions")
            pipe.xlen(self.keys.dlq(topic))
            for i in range(count):
                stream = self.keys.stream(topic, i)
                pipe.xlen(stream)
                queue_groups(pipe, stream)
                for group in wanted[topic]:
                    pipe.zcard(self.keys.retry(topic, i, group))
        replies = iter(await pipe.execute(raise_on_error=False))
        cache: Cache = {LAG: [], PENDING: [], LENGTH: [], RETRY: [], DLQ: []}
        counting: list[tuple[tuple[str, dict[str, Any], int], dict[str, Any]]] = []
        for topic, count in plan.items():
            partitions, dlq = _reply_or_raise(next(replies)), _reply_or_raise(next(replies))
            parsed = [self._partition(wanted[topic], replies) for _ in range(count)]
            if partitions is None:  # no such topic (deleted, or not created yet)
                self._partitions.pop(topic, None)
                continue
            self._partitions[topic] = max(1, int(as_text(partitions)))
            cache[DLQ].append(Observation(int(dlq), {"topic": topic}))
            for i, (length, groups, retries) in enumerate(parsed):
                labels: dict[str, str | int] = {"topic": topic, "partition": i}
                cache[LENGTH].append(Observation(length, labels))
                for group, scheduled in zip(wanted[topic], retries, strict=True):
                    g_labels: dict[str, str | int] = {**labels, "group": group}
                    cache[RETRY].append(Observation(scheduled, g_labels))
                    info = groups.get(group)
                    if info is None:  # the group has no position on this partition yet
                        continue
                    cache[PENDING].append(Observation(int(info["pending"]), g_labels))
                    lag = xinfo_lag(info, length)
                    if lag is None:
                        counting.append(((self.keys.stream(topic, i), info, length), g_labels))
                    else:
                        cache[LAG].append(Observation(lag, g_labels))
        return cache, counting

    def _partition(
        self, groups: list[str], replies: Any
    ) -> tuple[int, dict[str, dict[str, Any]], list[int]]:
        """Length, subscribed groups' ``XINFO GROUPS`` entries and retry counts of one
        partition, taken from the pipeline's replies in the order ``_read`` queued them."""
        length = int(_reply_or_raise(next(replies)))
        infos = groups_reply(next(replies), next(replies))
        retries = [int(_reply_or_raise(next(replies))) for _ in groups]
        wanted = set(groups)
        found = {as_text(g["name"]): g for g in infos}
        return length, {n: g for n, g in found.items() if n in wanted}, retries
