"""The consumer side of the registry: list, filter, choose and watch instances."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis_streaming._redis.errors import guarded
from redis_streaming._redis.names import validate_name
from redis_streaming._redis.replies import as_text
from redis_streaming.registry import scripts
from redis_streaming.registry._filters import FilterValue, compile_filters, matches
from redis_streaming.registry.instance import ServiceInstance, instance_from_fields
from redis_streaming.registry.keys import RegistryKeys
from redis_streaming.registry.options import RegistryOptions
from redis_streaming.registry.strategies import LoadBalancer, strategy_for
from redis_streaming.registry.watch import ServiceWatch

__all__ = ["ServiceDiscovery"]


@dataclass(slots=True)
class _Snapshot:
    """A service's live instances as read at server time ``server_ms`` (monotonic ``read_at``)."""

    server_ms: int
    read_at: float
    entries: dict[str, tuple[ServiceInstance, float]]  # id -> (instance, expiry ms or inf)

    def live(self) -> dict[str, ServiceInstance]:
        now_ms = self.server_ms + (time.monotonic() - self.read_at) * 1000
        return {i: inst for i, (inst, expiry) in self.entries.items() if expiry > now_ms}


class ServiceDiscovery:
    """Finds registered instances (docs/design.md, "Registry (framework)"). Safe to share
    between tasks.

    Reads go to Redis every time unless ``discovery_cache_s`` is set (then a service's list is
    reused for that long). An instance whose expiry has passed on the Redis server's clock is
    never returned, even before the sweeper has removed it (with a cache: by the server time
    estimated from the read plus the local time since). Methods raise
    :class:`~redis_streaming.errors.RedisUnavailable` when Redis cannot be reached.
    ``rng`` seeds the ``random`` and ``weighted`` strategies (for reproducible tests).
    """

    def __init__(
        self,
        redis: Any,
        options: RegistryOptions | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.redis = redis
        self.options = options or RegistryOptions()
        self.keys = RegistryKeys(self.options.namespace)
        self._rng = rng
        self._strategies: dict[str, LoadBalancer] = {}
        self._cache: dict[str, _Snapshot] = {}

    async def services(self) -> list[str]:
        """Names of the services with instances, sorted. A service whose last instance has
        expired stays listed until the next sweep."""
        names = await guarded(self.redis, self.redis.smembers(self.keys.names), "listing services")
        return sorted(as_text(n) for n in names)

    async def instances(
        self,
        name: str,
        healthy_only: bool = True,
        filters: Mapping[str, FilterValue] | None = None,
        *,
        fresh: bool = False,
    ) -> list[ServiceInstance]:
        """The live instances of service ``name``, in instance-id order.

        ``healthy_only`` drops instances marked unhealthy. ``filters`` keeps those matching
        every condition, e.g. ``{"weight:>=": "80", "region": "eu", "status:!=": "maintenance"}``
        (see :mod:`redis_streaming.registry._filters`: operators ``== != > >= < <=``, numeric
        when both sides are numbers). A bad operator raises ``ValueError`` before any I/O; an
        invalid service name raises ``InvalidName``. ``fresh`` reads Redis even when
        ``discovery_cache_s`` would allow a cached list.
        """
        validate_name(name, "service")
        conditions = compile_filters(filters)
        found = await guarded(self.redis, self._live(name, fresh=fresh), "listing instances")
        return [
            i for i in found.values() if (i.healthy or not healthy_only) and matches(i, conditions)
        ]

    async def get(self, name: str, instance_id: str) -> ServiceInstance | None:
        """One live instance (healthy or not), or ``None``."""
        validate_name(name, "service")
        validate_name(instance_id, "instance")
        found = await guarded(self.redis, self._live(name), "reading an instance")
        return found.get(instance_id)

    async def choose(
        self,
        name: str,
        strategy: str | LoadBalancer = "round_robin",
        key: str | None = None,
        filters: Mapping[str, FilterValue] | None = None,
        healthy_only: bool = True,
    ) -> ServiceInstance | None:
        """Pick one instance of ``name`` (among those :meth:`instances` returns with the same
        ``healthy_only`` and ``filters``), or ``None`` when there is none.

        Strategies: ``round_robin`` (in turn, per service and discovery object), ``random``,
        ``weighted`` (random, proportional to ``weight``), ``consistent_hash`` (needs ``key``:
        the same key gets the same instance while the instances stay the same, and adding an
        instance moves only the keys it takes over), or any :class:`LoadBalancer` object.
        """
        if isinstance(strategy, str):
            balancer = self._strategies.get(strategy)
            if balancer is None:
                balancer = self._strategies[strategy] = strategy_for(strategy, self._rng)
        else:
            balancer = strategy
        if key is None and strategy == "consistent_hash":
            balancer.choose(name, [], None)  # raises the explanatory ValueError before any I/O
        candidates = await self.instances(name, healthy_only=healthy_only, filters=filters)
        return balancer.choose(name, candidates, key)

    def watch(self, name: str, *, initial: bool = False) -> ServiceWatch:
        """Events of service ``name`` as an async iterator of :class:`ServiceEvent`.

        Use it as ``async with discovery.watch(name) as events: async for e in events: ...``
        (entering subscribes at once; plain ``async for`` subscribes on the first step, and
        ``aclose()`` ends it). With ``initial=True`` the first events are ADDED for every live
        instance at subscription time. See :class:`ServiceWatch` for what happens on reconnect.
        """
        validate_name(name, "service")
        return ServiceWatch(self, name, initial=initial)

    # -- internals ---------------------------------------------------------------------------

    async def _live(self, name: str, *, fresh: bool = False) -> dict[str, ServiceInstance]:
        """Every live instance of ``name`` by id, in id order, from the cache when allowed."""
        ttl = self.options.discovery_cache_s
        cached = self._cache.get(name)
        if not fresh and ttl > 0 and cached and time.monotonic() - cached.read_at < ttl:
            return cached.live()
        snapshot = await self._read(name)
        if ttl > 0:
            self._cache[name] = snapshot
        return snapshot.live()

    async def _read(self, name: str) -> _Snapshot:
        """Read the live instances: ids and expiries by server time (one script), then their
        hashes (one pipeline). An instance removed between the two is skipped."""
        reply = await scripts.LIVE(self.redis, [self.keys.instances(name)], [])
        read_at = time.monotonic()
        server_ms, flat = int(reply[0]), reply[1:]
        ids = [as_text(i) for i in flat[::2]]
        expiries = [float(as_text(e)) for e in flat[1::2]]
        entries: dict[str, tuple[ServiceInstance, float]] = {}
        if ids:
            pipe = self.redis.pipeline(transaction=False)
            for instance_id in ids:
                pipe.hgetall(self.keys.instance(name, instance_id))
            hashes = await pipe.execute()
            for instance_id, expiry, fields in zip(ids, expiries, hashes, strict=True):
                instance = instance_from_fields(fields) if fields else None
                if instance is not None and instance.instance_id == instance_id:
                    entries[instance_id] = (instance, expiry)
        return _Snapshot(server_ms, read_at, entries)
