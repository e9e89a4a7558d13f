"""The sweeper: removes expired ephemeral instances and publishes their REMOVED events."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from redis_streaming._redis.background import BackgroundLoop
from redis_streaming._redis.backoff import Backoff
from redis_streaming._redis.errors import guarded
from redis_streaming._redis.names import validate_name
from redis_streaming._redis.replies import as_text
from redis_streaming.registry import scripts
from redis_streaming.registry.keys import RegistryKeys
from redis_streaming.registry.options import RegistryOptions
from redis_streaming.registry.registry import forget_if_empty

__all__ = ["RegistrySweeper"]

log = logging.getLogger(__name__)
_BATCH = 500  # expired instances one sweep call removes per service at most


class RegistrySweeper(BackgroundLoop):
    """Every ``sweep_interval_s``: removes the instances whose expiry has passed (Redis server
    clock) and publishes one REMOVED event for each, then drops services with no instances
    left from the names set. Persistent instances never expire.

    Each service is swept by one Lua script that checks every candidate's expiry again and
    deletes it, removes it from the service's set and publishes its REMOVED event atomically,
    so any number of sweepers (one per application process is fine) remove an instance once
    and publish one event for it. Redis errors in the loop are logged and retried with capped
    backoff; the loop never dies of them.
    """

    def __init__(
        self,
        redis: Any,
        options: RegistryOptions | None = None,
        services: Iterable[str] | None = None,
    ) -> None:
        super().__init__()
        self.redis = redis
        self.options = options or RegistryOptions()
        self.keys = RegistryKeys(self.options.namespace)
        self.services = (
            None if services is None else [validate_name(s, "service") for s in services]
        )
        self.removed = 0
        self.passes = 0

    async def start(self) -> None:
        """Start the background loop (idempotent); its first pass runs at once."""
        self._launch("redis-streaming-registry-sweeper")

    async def _run(self) -> None:
        interval = self.options.sweep_interval_s

        async def step() -> float:
            await self.run_once()
            return interval

        await self._repeat("registry sweeper", step, Backoff(max_s=interval), log)

    async def run_once(self) -> dict[str, int]:
        """One pass now; returns the instances removed per service (services with nothing
        removed included). Raises ``RedisUnavailable`` when Redis cannot be reached."""
        return await guarded(self.redis, self._pass(), "sweeping expired instances")

    async def _pass(self) -> dict[str, int]:
        if self.services is not None:
            services = self.services
        else:
            services = sorted(as_text(s) for s in await self.redis.smembers(self.keys.names))
        result = dict.fromkeys(services, 0)
        if not services:
            self.passes += 1
            return result
        # Round trip 1: the expired candidates of every service (read only).
        replies = await scripts.EXPIRED.run_pipelined(
            self.redis, [([self.keys.instances(s)], [_BATCH]) for s in services]
        )
        calls: list[tuple[list[str], list[Any]]] = []
        swept: list[str] = []
        empty: list[str] = []
        for service, reply in zip(services, replies, strict=True):
            count, ids = int(reply[0]), [as_text(i) for i in reply[1:]]
            if ids:
                keys = [self.keys.instances(service)]
                keys += [self.keys.instance(service, i) for i in ids]
                calls.append((keys, [self.keys.events(service), service, *ids]))
                swept.append(service)
            elif count == 0:
                empty.append(service)
        # Round trip 2: remove them; the script re-checks each one atomically.
        for service, (removed, left) in zip(
            swept, await scripts.SWEEP.run_pipelined(self.redis, calls), strict=True
        ):
            result[service] = int(removed)
            if int(left) == 0:
                empty.append(service)
        for service in empty:
            await forget_if_empty(self.redis, self.keys, service)
        self.removed += sum(result.values())
        self.passes += 1
        return result
