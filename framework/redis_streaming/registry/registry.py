"""The provider side of the registry: register, heartbeat, update and deregister instances."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis_streaming._redis.errors import guarded
from redis_streaming.registry import scripts
from redis_streaming.registry.instance import (
    ServiceInstance,
    field_changes,
    instance_from_fields,
)
from redis_streaming.registry.keys import RegistryKeys
from redis_streaming.registry.options import RegistryOptions
from redis_streaming.registry.registration import Registration

__all__ = ["HeartbeatResult", "ServiceRegistry", "forget_if_empty"]

_HASH_GRACE_MS = 60_000


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    """What a heartbeat did.

    ``reregistered`` is true when the instance was no longer registered (it had expired, been
    swept or deregistered) and the heartbeat registered it again, publishing ADDED.
    ``expires_at_ms`` is its new expiry on the Redis server's clock (``None``: persistent).
    """

    reregistered: bool
    expires_at_ms: int | None


async def forget_if_empty(redis: Any, keys: RegistryKeys, service: str) -> None:
    """Drop ``service`` from the names SET when it has no instances left.

    The names SET lives in another cluster slot than the service's keys, so this cannot be part
    of the scripts. Registration adds the instance first and the name second, and this removes
    the name first and checks for instances second (adding the name back if one arrived), so a
    service with instances always ends up listed.
    """
    await redis.srem(keys.names, service)
    if await redis.zcard(keys.instances(service)):
        await redis.sadd(keys.names, service)


class ServiceRegistry:
    """Registers instances in Redis (docs/design.md, "Registry (framework)"). Safe to share
    between tasks.

    Every change is one atomic Lua script over the service's keys (one cluster slot) that also
    publishes the event on ``{ns}:svc:{<S>}:events``: ADDED on register, UPDATED on update,
    REMOVED on deregister (and, from :class:`RegistrySweeper`, on expiry). Expiry times come from
    the Redis server's clock. Methods raise :class:`~redis_streaming.errors.RedisUnavailable`
    when Redis cannot be reached.
    """

    def __init__(self, redis: Any, options: RegistryOptions | None = None) -> None:
        self.redis = redis
        self.options = options or RegistryOptions()
        self.keys = RegistryKeys(self.options.namespace)

    async def register(self, instance: ServiceInstance) -> bool:
        """Register ``instance`` (or replace its registration); returns whether it is new.

        New: ADDED is published. Replacing a live registration with different data publishes
        UPDATED; with identical data it only renews the expiry. An ephemeral instance expires
        ``ttl_s`` after this call unless it heartbeats; use :meth:`registration` for that.
        """
        outcome, _ = await self._write("register", instance, "registering an instance")
        return outcome == 1

    async def heartbeat(self, instance: ServiceInstance) -> HeartbeatResult:
        """Extend ``instance``'s expiry to ``ttl_s`` from now (server clock).

        If it is no longer registered (expired, swept or deregistered) it is registered again
        from ``instance`` and ADDED is published; the result says so. Fields changed in Redis
        since registration (health, metadata) are kept by a plain renewal.
        """
        outcome, expiry = await self._write("heartbeat", instance, "sending a heartbeat")
        return HeartbeatResult(reregistered=outcome == 1, expires_at_ms=expiry)

    async def update(
        self,
        instance: ServiceInstance,
        *,
        metadata: Mapping[str, str] | None = None,
        weight: int | None = None,
        healthy: bool | None = None,
    ) -> ServiceInstance | None:
        """Change the registered instance's ``metadata`` (replaced as a whole), ``weight`` or
        ``healthy`` flag (``None`` leaves a field as it is); publishes UPDATED if anything
        changed. Returns the instance as registered afterwards, or ``None`` when it is not
        registered (never registered, expired, or deregistered): nothing is written then.
        """
        changes = field_changes(metadata=metadata, weight=weight, healthy=healthy)
        fields = instance.replace(**changes).to_fields()  # validates the new values
        args: list[str] = [self.keys.events(instance.service), instance.instance_id]
        for name in changes:
            args += [name, fields[name]]
        keys = [self.keys.instances(instance.service), self._hash(instance)]
        reply = await guarded(
            self.redis, scripts.UPDATE(self.redis, keys, args), "updating an instance"
        )
        if reply is None:
            return None
        flat = reply[1]
        return instance_from_fields(dict(zip(flat[::2], flat[1::2], strict=True)))

    async def deregister(self, instance: ServiceInstance) -> bool:
        """Remove ``instance`` at once, publishing REMOVED; returns whether it was registered.

        The service leaves ``services()`` with its last instance.
        """
        keys = [self.keys.instances(instance.service), self._hash(instance)]
        args = [self.keys.events(instance.service), instance.service, instance.instance_id]
        removed, left = await guarded(
            self.redis, scripts.DEREGISTER(self.redis, keys, args), "deregistering an instance"
        )
        if not int(left):
            await guarded(
                self.redis,
                forget_if_empty(self.redis, self.keys, instance.service),
                "deregistering an instance",
            )
        return bool(int(removed))

    def registration(
        self, instance: ServiceInstance, *, deregister_on_close: bool = True
    ) -> Registration:
        """A :class:`Registration` of ``instance``: registers on start (or ``async with``),
        heartbeats every ``heartbeat_interval_s``, deregisters on stop."""
        return Registration(self, instance, deregister_on_close=deregister_on_close)

    # -- internals ---------------------------------------------------------------------------

    def _hash(self, instance: ServiceInstance) -> str:
        return self.keys.instance(instance.service, instance.instance_id)

    async def _write(
        self, mode: str, instance: ServiceInstance, doing: str
    ) -> tuple[int, int | None]:
        ttl_ms = self.options.ttl_ms if instance.ephemeral else 0
        hash_ttl_ms = ttl_ms * 2 + _HASH_GRACE_MS if instance.ephemeral else 0
        args: list[Any] = [mode, self.keys.events(instance.service), ttl_ms, hash_ttl_ms]
        for name, value in instance.to_fields().items():
            args += [name, value]
        keys = [self.keys.instances(instance.service), self._hash(instance)]
        outcome, expiry = await guarded(self.redis, scripts.REGISTER(self.redis, keys, args), doing)
        # The name goes in after the instance: see forget_if_empty for why this order matters.
        await guarded(self.redis, self.redis.sadd(self.keys.names, instance.service), doing)
        expiry = int(expiry)
        return int(outcome), (None if expiry < 0 else expiry)
