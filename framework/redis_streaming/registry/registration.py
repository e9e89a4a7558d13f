"""A registered instance kept alive by heartbeats until it is closed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from redis_streaming._redis.background import BackgroundLoop, FinalWrites, wait_event
from redis_streaming._redis.backoff import Backoff
from redis_streaming.registry.instance import ServiceInstance, field_changes
from redis_streaming.registry.options import RegistryOptions

__all__ = ["Registration"]

log = logging.getLogger(__name__)


class _Beat(Protocol):
    @property
    def reregistered(self) -> bool: ...


class _Registry(Protocol):
    """What a registration does through its :class:`~redis_streaming.ServiceRegistry` (which
    builds registrations, so this module does not import it)."""

    @property
    def options(self) -> RegistryOptions: ...

    async def register(self, instance: ServiceInstance) -> bool: ...

    async def heartbeat(self, instance: ServiceInstance) -> _Beat: ...

    async def update(
        self,
        instance: ServiceInstance,
        *,
        metadata: Mapping[str, str] | None = None,
        weight: int | None = None,
        healthy: bool | None = None,
    ) -> ServiceInstance | None: ...

    async def deregister(self, instance: ServiceInstance) -> bool: ...


class Registration(BackgroundLoop):
    """Keeps one instance registered: ``start()`` registers it (ADDED) and heartbeats every
    ``heartbeat_interval_s``; ``stop()`` ends the heartbeats and deregisters it (REMOVED).

    ``async with registry.registration(instance) as reg:`` does both. A heartbeat that finds
    the instance gone (it expired while the process was stalled or Redis was away, or someone
    deregistered it) registers it again and counts it in :attr:`reregistrations`. Redis errors
    in the heartbeat loop are logged and retried with capped backoff; the loop never dies of
    them. Build it with :meth:`ServiceRegistry.registration`.
    """

    def __init__(
        self,
        registry: _Registry,
        instance: ServiceInstance,
        *,
        deregister_on_close: bool = True,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.deregister_on_close = deregister_on_close
        self.heartbeats = 0
        self.reregistrations = 0
        self._instance = instance
        self._final_writes = FinalWrites(f"registry: {instance.service}/{instance.instance_id}")

    @property
    def instance(self) -> ServiceInstance:
        """The instance as this registration last wrote or read it."""
        return self._instance

    async def start(self) -> None:
        """Register the instance (raises ``RedisUnavailable`` if Redis cannot be reached) and
        start heartbeating. Idempotent."""
        if self.running:
            return
        await self.registry.register(self._instance)
        self._launch(f"redis-streaming-registration-{self._instance.instance_id}")

    async def stop(self) -> None:
        """Stop heartbeating, then deregister (unless ``deregister_on_close`` is false).

        A failed deregistration is logged, not raised: the instance then expires after
        ``ttl_s``. A cancelled ``stop()`` leaves the deregistration running; the next
        ``stop()`` waits for it.
        """
        was_running = self.running
        await super().stop()
        await self._final_writes.wait()  # a deregistration that a cancelled stop() left running
        if was_running and self.deregister_on_close:
            try:
                await self._final_writes.shield(self.registry.deregister(self._instance))
            except Exception as exc:
                log.warning(
                    "registry: could not deregister %s/%s (%s); it expires after %.1fs",
                    self._instance.service, self._instance.instance_id, exc,
                    self.registry.options.ttl_s,
                )  # fmt: skip

    async def update(
        self,
        *,
        metadata: Mapping[str, str] | None = None,
        weight: int | None = None,
        healthy: bool | None = None,
    ) -> ServiceInstance:
        """Change the instance (see :meth:`ServiceRegistry.update`) and remember the change, so
        a later re-registration writes it too. Returns the instance as it now is."""
        updated = await self.registry.update(
            self._instance, metadata=metadata, weight=weight, healthy=healthy
        )
        if updated is None:  # not registered now: the next heartbeat registers it as changed
            changes = field_changes(metadata=metadata, weight=weight, healthy=healthy)
            updated = self._instance.replace(**changes)
        self._instance = updated
        return self._instance

    async def _run(self) -> None:
        interval = self.registry.options.heartbeat_interval_s

        async def heartbeat() -> float:
            result = await self.registry.heartbeat(self._instance)
            self.heartbeats += 1
            if result.reregistered:
                self.reregistrations += 1
                log.warning(
                    "registry: %s/%s had expired or was removed; registered it again",
                    self._instance.service, self._instance.instance_id,
                )  # fmt: skip
            return interval

        # start() registered it just now: the first heartbeat is due one interval later.
        if not await wait_event(self._stopping, interval):
            backoff = Backoff(max_s=max(0.1, interval / 2))
            await self._repeat("registry: heartbeat", heartbeat, backoff, log)
