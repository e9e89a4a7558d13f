"""Group membership heartbeats and the deterministic fair assignment of partitions."""

from __future__ import annotations

from typing import Any

from redis_streaming.mq.keys import Keys
from redis_streaming.mq.scripts import script

__all__ = ["Membership", "assign"]

_HEARTBEAT = script("heartbeat")


def assign(members: list[str], partitions: int, member: str) -> set[int]:
    """Partitions ``member`` should own: partition i belongs to ``sorted(members)[i % n]``.

    Every instance computes this from the same member list, so all agree without a coordinator;
    each member gets ``partitions // n`` or one more.
    """
    ordered = sorted(members)
    if member not in ordered:
        return set()
    n, index = len(ordered), ordered.index(member)
    return {p for p in range(partitions) if p % n == index}


class Membership:
    """One consumer's membership of ``group`` on ``topic`` (ZSET ``rs:members:{T}:G``)."""

    def __init__(
        self, redis: Any, keys: Keys, topic: str, group: str, consumer_id: str, ttl_s: float
    ) -> None:
        self.redis = redis
        self.key = keys.members(topic, group)
        self.consumer_id = consumer_id
        self.ttl_ms = int(ttl_s * 1000)

    async def heartbeat(self) -> list[str]:
        """Refresh this member, prune expired ones; returns the live members, sorted."""
        members = await _HEARTBEAT(self.redis, [self.key], [self.consumer_id, self.ttl_ms])
        return [m.decode() for m in members]

    async def leave(self) -> None:
        """Remove this member at once, so the others rebalance without waiting for expiry."""
        await self.redis.zrem(self.key, self.consumer_id)
