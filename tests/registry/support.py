"""Shared helpers of the registry tests: instances, reading watch events, the keys left."""

from __future__ import annotations

import asyncio
from typing import Any

from redis_streaming.registry import ServiceDiscovery, ServiceEvent, ServiceInstance, ServiceWatch


def inst(
    instance_id: str, port: int = 8000, service: str = "orders", **extra: object
) -> ServiceInstance:
    """An instance of ``service`` on 127.0.0.1."""
    return ServiceInstance(service, instance_id, "127.0.0.1", port, **extra)  # type: ignore[arg-type]


async def next_event(watch: ServiceWatch, timeout_s: float = 5.0) -> ServiceEvent:
    """The watch's next event, failing the test after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        return await anext(watch)


async def events_until_quiet(watch: ServiceWatch, quiet_s: float = 0.5) -> list[ServiceEvent]:
    """Every event until none arrives for ``quiet_s``."""
    out: list[ServiceEvent] = []
    while True:
        try:
            async with asyncio.timeout(quiet_s):
                out.append(await anext(watch))
        except TimeoutError:
            return out


async def gone(discovery: ServiceDiscovery, service: str = "orders") -> bool:
    """Whether ``service`` has no live instance left, healthy or not (expired ones are not
    live, swept or not)."""
    return await discovery.instances(service, healthy_only=False) == []


def summary(events: list[ServiceEvent]) -> list[tuple[str, str]]:
    """``(type, instance_id)`` of each event."""
    return [(e.type.value, e.instance_id) for e in events]


async def keys_of(redis: Any, namespace: str) -> list[bytes]:
    """The namespace's keys, sorted; with SCAN, which a cluster client runs on every primary
    (its KEYS asks one node only)."""
    return sorted([k async for k in redis.scan_iter(match=f"{namespace}:*")])
