"""Health: components (redis, mq, ...) aggregated as Spring Boot Actuator does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Health", "HealthRegistry", "mq_health", "redis_health"]

UP, DOWN, OUT_OF_SERVICE, UNKNOWN = "UP", "DOWN", "OUT_OF_SERVICE", "UNKNOWN"
_ORDER = {DOWN: 0, OUT_OF_SERVICE: 1, UP: 2, UNKNOWN: 3}


@dataclass
class Health:
    """One component's status and details."""

    status: str
    details: dict[str, Any] = field(default_factory=dict)

    def body(self, details: bool) -> dict[str, Any]:
        """The JSON node: ``{"status": ..., "details": {...}}``."""
        return (
            {"status": self.status, "details": self.details} if details else {"status": self.status}
        )


Check = Callable[[], Awaitable[Health]]


class HealthRegistry:
    """Named health checks; the aggregate is DOWN if any component is DOWN."""

    def __init__(self, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self._checks: dict[str, Check] = {}

    def register(self, name: str, check: Check) -> None:
        """Add (or replace) the component ``name``."""
        self._checks[name] = check

    @property
    def names(self) -> list[str]:
        """Registered component names, sorted."""
        return sorted(self._checks)

    async def check(self, name: str) -> Health:
        """Run one check; a check that raises or times out is DOWN with the error."""
        try:
            return await asyncio.wait_for(self._checks[name](), self.timeout_s)
        except TimeoutError:
            return Health(DOWN, {"error": f"health check timed out after {self.timeout_s}s"})
        except Exception as exc:
            return Health(DOWN, {"error": f"{type(exc).__name__}: {exc}"})

    async def check_all(self) -> tuple[str, dict[str, Health]]:
        """(aggregate status, component results)."""
        names = self.names
        results = await asyncio.gather(*(self.check(n) for n in names))
        components = dict(zip(names, results, strict=True))
        return aggregate(h.status for h in components.values()), components


def aggregate(statuses: Any) -> str:
    """The worst status (DOWN < OUT_OF_SERVICE < UP < UNKNOWN); UP when there is none."""
    worst = UP
    for status in statuses:
        if _ORDER.get(status, 3) < _ORDER[worst]:
            worst = status
    return worst


def redis_health(get_redis: Callable[[], Any]) -> Check:
    """PING the server; UP with its version, DOWN with the error."""

    async def check() -> Health:
        redis = get_redis()
        if redis is None:
            return Health(DOWN, {"error": "not connected yet"})
        try:
            info = await redis.info("server")
        except Exception as exc:
            return Health(DOWN, {"error": f"{type(exc).__name__}: {exc}"})
        return Health(
            UP,
            {
                "version": info.get("valkey_version") or info.get("redis_version"),
                "mode": info.get("redis_mode", "standalone"),
            },
        )

    return check


def mq_health(get_consumer: Callable[[], Any], is_running: Callable[[], bool]) -> Check:
    """UP while the consumer runs and its coordination rounds succeed."""

    async def check() -> Health:
        consumer = get_consumer()
        if consumer is None or not is_running():
            return Health(OUT_OF_SERVICE, {"reason": "listeners are not running"})
        listeners = {
            s.id: {
                "topic": s.topic,
                "group": s.group,
                "state": s.state.value,
                "ownedPartitions": s.owned_partitions,
                "inFlight": s.in_flight,
                "processed": s.processed,
                "lastError": s.last_error,
            }
            for s in consumer.subscriptions
        }
        status = UP if consumer.healthy or not listeners else DOWN
        return Health(status, {"consumerId": consumer.consumer_id, "listeners": listeners})

    return check
