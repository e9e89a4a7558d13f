"""Active health checks: probe every instance and record changes of its ``healthy`` flag."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from redis_streaming._redis.background import BackgroundLoop
from redis_streaming._redis.backoff import Backoff
from redis_streaming._redis.names import validate_name
from redis_streaming.registry._probes import http_probe, probe_target, tcp_probe
from redis_streaming.registry.discovery import ServiceDiscovery
from redis_streaming.registry.instance import ServiceInstance
from redis_streaming.registry.options import RegistryOptions
from redis_streaming.registry.registry import ServiceRegistry

__all__ = ["HealthChecker"]

log = logging.getLogger(__name__)


class HealthChecker(BackgroundLoop):
    """Every ``health_check_interval_s``, probes every live instance of every service (or of
    ``services``) and, when a result differs from the instance's ``healthy`` flag in Redis,
    sets the flag with :meth:`ServiceRegistry.update`, which publishes UPDATED. Unchanged
    results write nothing.

    Probes (see :func:`~redis_streaming.registry._probes.probe_target`): HTTP ``GET`` of
    metadata ``health_url``, else of ``<protocol>://host:port<health_check_path>`` for http and
    https instances, 2xx = healthy; a TCP connect for other protocols; metadata
    ``health_check`` = ``http``, ``tcp`` or ``none`` overrides the choice. Each probe has
    ``health_check_timeout_s``; at most ``health_check_concurrency`` run at once. Several
    checkers may run (the flag changes once, and one event is published per change), but each
    probes every instance, so one or two per deployment are enough.
    """

    def __init__(
        self,
        registry: ServiceRegistry,
        discovery: ServiceDiscovery,
        options: RegistryOptions | None = None,
        services: Iterable[str] | None = None,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.discovery = discovery
        self.options = options or registry.options
        self.services = (
            None if services is None else [validate_name(s, "service") for s in services]
        )
        self.changes = 0
        self.passes = 0

    async def start(self) -> None:
        """Start the background loop (idempotent); its first pass runs at once."""
        self._launch("redis-streaming-health-checker")

    async def _run(self) -> None:
        interval = self.options.health_check_interval_s

        async def step() -> float:
            await self.run_once()
            return interval

        await self._repeat("registry health checker", step, Backoff(max_s=interval), log)

    async def check(self, instance: ServiceInstance) -> bool | None:
        """Probe one instance now: True (healthy), False, or None when it is not checked
        (metadata ``health_check`` = ``none``). Never raises for a failing instance."""
        target = probe_target(instance, self.options.health_check_path)
        if target is None:
            return None
        kind, url = target
        timeout_s = self.options.health_check_timeout_s
        if kind == "tcp":
            return await tcp_probe(instance.host, instance.port, timeout_s)
        return await http_probe(url, timeout_s, verify_tls=self.options.health_check_verify_tls)

    async def run_once(self) -> dict[tuple[str, str], bool]:
        """One pass now; returns each probed instance's result by ``(service, instance_id)``.

        Raises ``RedisUnavailable`` when Redis cannot be reached (after every probe of the
        pass has finished).
        """
        names = self.services if self.services is not None else await self.discovery.services()
        found = await asyncio.gather(
            *(self.discovery.instances(n, healthy_only=False, fresh=True) for n in names)
        )
        gate = asyncio.Semaphore(self.options.health_check_concurrency)
        results: dict[tuple[str, str], bool] = {}
        errors: list[Exception] = []

        async def one(instance: ServiceInstance) -> None:
            async with gate:
                healthy = await self.check(instance)
            if healthy is None:
                return
            results[instance.key] = healthy
            if healthy == instance.healthy:
                return
            try:
                updated = await self.registry.update(instance, healthy=healthy)
            except Exception as exc:  # keep probing the others; raised after the pass
                errors.append(exc)
                return
            if updated is not None:
                self.changes += 1
                log.info(
                    "registry: %s/%s is now %s",
                    instance.service, instance.instance_id,
                    "healthy" if healthy else "unhealthy",
                )  # fmt: skip

        await asyncio.gather(*(one(i) for group in found for i in group))
        self.passes += 1
        if errors:
            raise errors[0]
        return results
