"""Load-balancing strategies for :meth:`ServiceDiscovery.choose`.

Each strategy picks one of the candidate instances it is given (already filtered; ``None`` for
none). Strategies keep per-service state in memory, so one strategy object (as held by one
``ServiceDiscovery``) balances that process's calls.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from redis_streaming.registry.instance import ServiceInstance

__all__ = [
    "ConsistentHash",
    "LoadBalancer",
    "RandomChoice",
    "RoundRobin",
    "WeightedRandom",
    "strategy_for",
]


@runtime_checkable
class LoadBalancer(Protocol):
    """Picks one instance of ``service`` among ``instances`` (``None`` when there are none)."""

    def choose(
        self, service: str, instances: Sequence[ServiceInstance], key: str | None = None
    ) -> ServiceInstance | None: ...


class RoundRobin:
    """Takes the instances in instance-id order, one after the other, per service: over ``n``
    picks each of ``k`` instances is chosen ``n/k`` times (plus at most one)."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}

    def choose(
        self, service: str, instances: Sequence[ServiceInstance], key: str | None = None
    ) -> ServiceInstance | None:
        if not instances:
            return None
        counter = self._counters.setdefault(service, itertools.count())
        ordered = sorted(instances, key=lambda i: i.instance_id)
        return ordered[next(counter) % len(ordered)]


class RandomChoice:
    """Uniformly at random."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def choose(
        self, service: str, instances: Sequence[ServiceInstance], key: str | None = None
    ) -> ServiceInstance | None:
        return self._rng.choice(instances) if instances else None


class WeightedRandom:
    """At random with probability proportional to ``weight``; weight 0 is never chosen
    (``None`` when every candidate has weight 0). Stateless, so many clients balance well."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def choose(
        self, service: str, instances: Sequence[ServiceInstance], key: str | None = None
    ) -> ServiceInstance | None:
        cumulative = list(itertools.accumulate(i.weight for i in instances))
        if not cumulative or cumulative[-1] <= 0:
            return None
        point = self._rng.random() * cumulative[-1]
        return instances[bisect.bisect_right(cumulative, point)]


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class ConsistentHash:
    """A hash ring with ``virtual_nodes`` points per instance (64-bit BLAKE2b of
    ``"<instance_id>#<n>"``); a key (hashed the same way) goes to the next point clockwise.

    The same key maps to the same instance while the set of instances is unchanged, in every
    process. When an instance joins, only the keys it takes over move (about ``1/(k+1)`` of
    them), all to it; when one leaves, only its keys move. ``key`` is required.
    """

    def __init__(self, virtual_nodes: int = 160) -> None:
        if virtual_nodes < 1:
            raise ValueError(f"virtual_nodes must be at least 1, got {virtual_nodes}")
        self.virtual_nodes = virtual_nodes
        self._rings: dict[str, tuple[tuple[str, ...], list[int], list[str]]] = {}

    def _ring(self, service: str, ids: tuple[str, ...]) -> tuple[list[int], list[str]]:
        cached = self._rings.get(service)
        if cached is not None and cached[0] == ids:
            return cached[1], cached[2]
        points = sorted((_hash64(f"{i}#{n}"), i) for i in ids for n in range(self.virtual_nodes))
        ring = ([p for p, _ in points], [i for _, i in points])
        self._rings[service] = (ids, *ring)
        return ring

    def choose(
        self, service: str, instances: Sequence[ServiceInstance], key: str | None = None
    ) -> ServiceInstance | None:
        if key is None:
            raise ValueError(
                "the consistent_hash strategy needs a key: choose(name, "
                "strategy='consistent_hash', key='<user or session id>')"
            )
        if not instances:
            return None
        by_id = {i.instance_id: i for i in instances}
        hashes, owners = self._ring(service, tuple(sorted(by_id)))
        index = bisect.bisect_left(hashes, _hash64(key)) % len(hashes)
        return by_id[owners[index]]


STRATEGY_NAMES = ("round_robin", "random", "weighted", "consistent_hash")


def strategy_for(name: str, rng: random.Random | None = None) -> LoadBalancer:
    """A new strategy object for one of the names ``round_robin``, ``random``, ``weighted``
    and ``consistent_hash``; ``ValueError`` for any other name."""
    if name == "round_robin":
        return RoundRobin()
    if name == "random":
        return RandomChoice(rng)
    if name == "weighted":
        return WeightedRandom(rng)
    if name == "consistent_hash":
        return ConsistentHash()
    raise ValueError(
        f"unknown strategy {name!r}: use one of {', '.join(STRATEGY_NAMES)}, or pass a "
        "LoadBalancer object"
    )
