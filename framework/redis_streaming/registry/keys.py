"""The registry's Redis key layout (docs/design.md, "Registry (framework)"). No other module
formats these names.

Every key of one service carries the hash tag ``{<service>}``, so a service's instance set and
instance hashes share one Redis Cluster slot and every Lua script over them is cluster-safe.
The set of service names is global (its own slot) and is only ever touched by single-key
commands outside the scripts.

=====================================  =======  ===========================================
key                                    type     holds
=====================================  =======  ===========================================
``{ns}:svc:names``                     SET      names of services that have instances
``{ns}:svc:{<S>}:instances``           ZSET     instance ids of service S; score = expiry
                                                (epoch ms, Redis server clock), ``+inf``
                                                for persistent instances
``{ns}:svc:{<S>}:i:<id>``              HASH     one instance (see ``instance.to_fields``)
``{ns}:svc:{<S>}:events``              channel  ADDED / UPDATED / REMOVED events (JSON)
=====================================  =======  ===========================================
"""

from __future__ import annotations

from redis_streaming._redis.names import validate_name

__all__ = ["RegistryKeys"]


class RegistryKeys:
    """Builds every registry key of one namespace. Names must already be validated."""

    __slots__ = ("namespace",)

    def __init__(self, namespace: str = "rs") -> None:
        self.namespace = validate_name(namespace, "namespace")

    @property
    def names(self) -> str:
        """SET of the names of every service with instances."""
        return f"{self.namespace}:svc:names"

    def instances(self, service: str) -> str:
        """ZSET of the service's instance ids; score = expiry ms (``+inf`` = persistent)."""
        return f"{self.namespace}:svc:{{{service}}}:instances"

    def instance(self, service: str, instance_id: str) -> str:
        """HASH of one instance's fields."""
        return f"{self.namespace}:svc:{{{service}}}:i:{instance_id}"

    def events(self, service: str) -> str:
        """Pub/sub channel of the service's ADDED, UPDATED and REMOVED events."""
        return f"{self.namespace}:svc:{{{service}}}:events"
