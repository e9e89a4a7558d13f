"""Service registry and discovery on Redis (docs/design.md, "Registry (framework)").

Providers register :class:`ServiceInstance` values with :class:`ServiceRegistry` (and keep them
alive with a :class:`Registration`); consumers find them with :class:`ServiceDiscovery`
(filters, load-balancing strategies, a pub/sub ``watch``). A :class:`RegistrySweeper` removes
expired instances and publishes their REMOVED events; a :class:`HealthChecker` probes instances
over HTTP or TCP and records their health. Key layout: :mod:`redis_streaming.registry.keys`.
"""

from redis_streaming.registry.discovery import ServiceDiscovery
from redis_streaming.registry.health import HealthChecker
from redis_streaming.registry.instance import ServiceEvent, ServiceEventType, ServiceInstance
from redis_streaming.registry.keys import RegistryKeys
from redis_streaming.registry.options import RegistryOptions
from redis_streaming.registry.registration import Registration
from redis_streaming.registry.registry import HeartbeatResult, ServiceRegistry
from redis_streaming.registry.strategies import (
    ConsistentHash,
    LoadBalancer,
    RandomChoice,
    RoundRobin,
    WeightedRandom,
)
from redis_streaming.registry.sweeper import RegistrySweeper
from redis_streaming.registry.watch import ServiceWatch

__all__ = [
    "ConsistentHash",
    "HealthChecker",
    "HeartbeatResult",
    "LoadBalancer",
    "RandomChoice",
    "Registration",
    "RegistryKeys",
    "RegistryOptions",
    "RegistrySweeper",
    "RoundRobin",
    "ServiceDiscovery",
    "ServiceEvent",
    "ServiceEventType",
    "ServiceInstance",
    "ServiceRegistry",
    "ServiceWatch",
    "WeightedRandom",
]
