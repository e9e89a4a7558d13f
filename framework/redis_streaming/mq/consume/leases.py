"""Partition leases: ``SET NX PX`` to take, compare-and-set Lua to renew and release."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from redis_streaming._redis.lua import LuaScript
from redis_streaming.cluster import route
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.scripts import script

__all__ = ["Leases"]

_ACQUIRE = script("lease_acquire")
_RENEW = script("lease_renew")
_RELEASE = script("lease_release")


class Leases:
    """The leases of one consumer on the partitions of one topic and group.

    A lease is valid for ``ttl_s`` from the moment the request was *sent*; ``valid_until`` returns
    that local (monotonic) deadline, which is never later than the server-side expiry, so a worker
    that stops taking messages at the deadline never overlaps with the next owner.
    """

    def __init__(
        self, redis: Any, keys: Keys, topic: str, group: str, consumer_id: str, ttl_s: float
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.topic = topic
        self.group = group
        self.consumer_id = consumer_id
        self.ttl_s = ttl_s
        self._valid_until: dict[int, float] = {}

    def valid_until(self, partition: int) -> float:
        """Monotonic deadline of the lease on ``partition`` (0 when not held)."""
        return self._valid_until.get(partition, 0.0)

    def _key(self, partition: int) -> str:
        return self.keys.lease(self.topic, partition, self.group)

    async def _batch(
        self, script: LuaScript, partitions: list[int], ttl: bool
    ) -> tuple[dict[int, int], Exception | None]:
        """Run ``script`` on each partition's lease: one pipeline per node, the nodes in
        parallel. Returns the replies of the partitions whose node answered, and the first
        error of a node that did not (on a Redis Cluster a failing primary fails only its own
        partitions: the others' leases are still renewed while its replica takes over)."""
        args = [self.consumer_id, int(self.ttl_s * 1000)] if ttl else [self.consumer_id]
        by_node: dict[str, list[int]] = {}
        for p in partitions:
            node = route(self.redis, self._key(p)).get("target_nodes")
            by_node.setdefault(getattr(node, "name", ""), []).append(p)
        groups = list(by_node.values())
        outcomes = await asyncio.gather(
            *(
                script.run_pipelined(self.redis, [([self._key(p)], args) for p in g])
                for g in groups
            ),
            return_exceptions=True,
        )
        replies: dict[int, int] = {}
        error: Exception | None = None
        for group, outcome in zip(groups, outcomes, strict=True):
            if isinstance(outcome, Exception):
                error = error or outcome
            elif isinstance(outcome, BaseException):  # a cancellation of one of them
                raise outcome
            else:
                replies.update(zip(group, (int(r) for r in outcome), strict=True))
        return replies, error

    async def acquire(self, partitions: Iterable[int]) -> set[int]:
        """Try to take (or keep) the leases; returns the partitions now held.

        Raises the error of a node that did not answer, after taking the leases of the
        partitions on the nodes that did (a later call keeps them)."""
        wanted = sorted(partitions)
        if not wanted:
            return set()
        sent = time.monotonic()
        replies, error = await self._batch(_ACQUIRE, wanted, True)
        got = {p for p, ok in replies.items() if ok}
        for p in got:
            self._valid_until[p] = sent + self.ttl_s
        if error is not None:
            raise error
        return got

    async def renew(self, partitions: Iterable[int]) -> set[int]:
        """Extend held leases; returns the partitions whose lease was lost.

        Raises the error of a node that did not answer, after extending the leases on the
        nodes that did and forgetting those found lost (their workers stop by themselves);
        the leases on the failed node keep their deadline."""
        held = sorted(partitions)
        if not held:
            return set()
        sent = time.monotonic()
        replies, error = await self._batch(_RENEW, held, True)
        lost = set()
        for p, ok in replies.items():
            if ok:
                self._valid_until[p] = sent + self.ttl_s
            else:
                lost.add(p)
                self._valid_until.pop(p, None)
        if error is not None:
            raise error
        return lost

    async def release(self, partitions: Iterable[int]) -> None:
        """Give the leases up (only those this consumer still holds are deleted); raises the
        error of a node that did not answer (its leases expire by themselves)."""
        held = sorted(partitions)
        for p in held:
            self._valid_until.pop(p, None)
        if held:
            _, error = await self._batch(_RELEASE, held, False)
            if error is not None:
                raise error

    def forget(self, partition: int) -> None:
        """Treat the lease on ``partition`` as lost locally (its worker stops taking messages)."""
        self._valid_until.pop(partition, None)

    async def holders(self, partitions: Iterable[int]) -> dict[int, str | None]:
        """Current holder of each partition's lease (``None`` when free)."""
        parts = sorted(partitions)
        pipe = self.redis.pipeline(transaction=False)
        for p in parts:
            pipe.get(self._key(p))
        values = await pipe.execute()
        return {
            p: (v.decode() if v is not None else None) for p, v in zip(parts, values, strict=True)
        }
