"""Watching one service's events over pub/sub, resynchronised after reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any, Protocol

from redis_streaming._redis.background import Lifecycle, supervise
from redis_streaming._redis.backoff import Backoff
from redis_streaming._redis.errors import as_unavailable, is_connection_error
from redis_streaming.cluster import is_cluster
from redis_streaming.registry.instance import ServiceEvent, ServiceEventType, ServiceInstance
from redis_streaming.registry.keys import RegistryKeys

__all__ = ["ServiceWatch"]

log = logging.getLogger(__name__)
_POLL_S = 1.0  # longest single wait for a pub/sub message
_PING_AFTER_S = 15.0  # an idle subscription is pinged, so a dead connection is noticed
_SUBSCRIBE_TIMEOUT_S = 10.0


class _Discovery(Protocol):
    """What a watch reads through its :class:`~redis_streaming.ServiceDiscovery` (which
    builds watches, so this module does not import it)."""

    redis: Any
    keys: RegistryKeys

    async def _live(self, name: str, *, fresh: bool = False) -> dict[str, ServiceInstance]: ...


class ServiceWatch(Lifecycle):
    """An async iterator of one service's :class:`ServiceEvent`, from pub/sub.

    The watch keeps the view of the service it has reported (taken when it subscribes, then
    changed by each event) and reports each change once: an event that would not change that
    view (a duplicate, or REMOVED of an instance it never reported) is skipped.

    Pub/sub is fire-and-forget, so events published while the connection is down are lost.
    When the subscription is re-established (redis-py reconnects, or the watch does after an
    outage, retrying with capped backoff for as long as it runs), the watch reads the live
    instances again and reports the difference as ADDED, UPDATED and REMOVED events, counting
    the resynchronisation in :attr:`reconnects`; :attr:`last_error` holds the error of an
    outage in progress. Events are therefore complete up to a
    reconnect's gap, whose changes are reported as their net effect.
    """

    def __init__(self, discovery: _Discovery, service: str, *, initial: bool) -> None:
        self.discovery = discovery
        self.service = service
        self.initial = initial
        self.reconnects = 0
        self.last_error: BaseException | None = None
        self._channel = discovery.keys.events(service)
        self._pubsub: Any = None
        self._known: dict[str, ServiceInstance] | None = None
        self._pending: deque[ServiceEvent] = deque()
        self._stale = False  # the subscription was re-established: resynchronise
        self._closed = asyncio.Event()  # set by aclose(): ends the iteration, and a backoff
        self._last_traffic = 0.0
        self._backoff = Backoff()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe and take the first snapshot now (idempotent). Raises ``RedisUnavailable``
        when Redis cannot be reached; later outages are survived."""
        if self._closed.is_set():
            return
        with as_unavailable(self.discovery.redis, "watching a service"):
            if self._pubsub is None:
                await self._subscribe()
            if self._stale:
                await self._resync()

    async def aclose(self) -> None:
        """Unsubscribe and end the iteration."""
        self._closed.set()
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await pubsub.aclose()

    async def stop(self) -> None:
        """The same as :meth:`aclose` (what ``async with`` calls on the way out)."""
        await self.aclose()

    def __aiter__(self) -> ServiceWatch:
        return self

    async def __anext__(self) -> ServiceEvent:
        await supervise(
            self._step, self._backoff, self._after_error, running=self._waiting, wake=self._closed
        )
        if not self._pending:  # closed
            raise StopAsyncIteration
        return self._pending.popleft()

    def _waiting(self) -> bool:
        return not self._pending and not self._closed.is_set()

    async def _step(self) -> float | None:
        if self._pubsub is None:
            await self._subscribe()
        elif self._stale:
            await self._resync()
        else:
            await self._receive()
            self.last_error = None
            return 0.0  # the subscription delivers: the backoff starts again
        return None

    async def _after_error(self, exc: Exception, backoff: Backoff) -> float:
        if self._closed.is_set():  # closed by another task while this one waited
            return 0.0  # the iteration ends
        if not (is_connection_error(exc) or isinstance(exc, TimeoutError)):
            raise exc
        self.last_error = exc
        await self._drop_cluster_subscription()
        delay = backoff.next_delay()
        log.warning(
            "registry: watch of %r lost Redis (%s); retrying in %.2fs", self.service, exc, delay
        )
        return delay

    # -- steps -------------------------------------------------------------------------------

    async def _subscribe(self) -> None:
        redis = self.discovery.redis
        if is_cluster(redis):
            # redis-py's cluster pub/sub subscribes on the node of the channel's slot, looked up
            # in a slot map that a new client has not read yet. (The registry publishes with
            # classic PUBLISH, which every node of a cluster delivers to its subscribers.)
            await redis.initialize()
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            # Wait for the confirmation: only then does the server deliver our events, so the
            # snapshot taken next cannot miss a change.
            async with asyncio.timeout(_SUBSCRIBE_TIMEOUT_S):
                while True:
                    message = await pubsub.get_message(timeout=_POLL_S)
                    if message is not None and message["type"] == "subscribe":
                        break
        except BaseException:
            await pubsub.aclose()
            raise
        self._pubsub = pubsub
        self._stale = True  # a snapshot is due before any event is applied
        self._last_traffic = time.monotonic()

    async def _drop_cluster_subscription(self) -> None:
        """On a cluster, subscribe afresh after a connection error: redis-py's cluster pub/sub
        reconnects to the node it first chose, which may be gone for good (failed over)."""
        if not is_cluster(self.discovery.redis) or self._pubsub is None:
            return
        pubsub, self._pubsub = self._pubsub, None
        self.reconnects += 1
        with contextlib.suppress(Exception):
            await pubsub.aclose()

    async def _resync(self) -> None:
        """Read the live instances and report how they differ from the known view."""
        current = await self.discovery._live(self.service, fresh=True)
        known = self._known
        self._known = dict(current)
        self._stale = False
        if known is None:
            if self.initial:
                for instance in current.values():
                    self._emit(ServiceEventType.ADDED, instance.instance_id, instance)
            return
        for instance_id, before in known.items():
            if instance_id not in current:
                self._emit(ServiceEventType.REMOVED, instance_id, before)
        for instance_id, now in current.items():
            previous = known.get(instance_id)
            if previous is None:
                self._emit(ServiceEventType.ADDED, instance_id, now)
            elif previous != now:
                self._emit(ServiceEventType.UPDATED, instance_id, now)

    async def _receive(self) -> None:
        message = await self._pubsub.get_message(timeout=_POLL_S)
        now = time.monotonic()
        if message is None:
            if now - self._last_traffic > _PING_AFTER_S:
                self._last_traffic = now
                await self._pubsub.ping()  # fails (and reconnects) on a dead connection
            return
        self._last_traffic = now
        kind = message["type"]
        if kind == "subscribe":
            # redis-py re-subscribed after reconnecting: events may have been lost meanwhile.
            self.reconnects += 1
            self._stale = True
        elif kind == "message":
            event = ServiceEvent.from_json(message["data"])
            if event is not None and event.service == self.service:
                self._apply(event)

    def _apply(self, event: ServiceEvent) -> None:
        known = self._known if self._known is not None else {}
        before = known.get(event.instance_id)
        if event.type is ServiceEventType.REMOVED:
            if before is None:
                return  # never reported, or already reported removed
            del known[event.instance_id]
            self._pending.append(
                ServiceEvent(
                    event.type, event.service, event.instance_id,
                    event.instance or before, event.timestamp_ms,
                )
            )  # fmt: skip
            return
        if event.instance is None or event.instance == before:
            return
        known[event.instance_id] = event.instance
        self._pending.append(event)

    def _emit(self, kind: ServiceEventType, instance_id: str, instance: ServiceInstance) -> None:
        self._pending.append(ServiceEvent(kind, self.service, instance_id, instance))
