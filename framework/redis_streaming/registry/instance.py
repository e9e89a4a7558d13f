"""Service instances and registry events, and their encoding in Redis hashes and events."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from redis_streaming._redis.names import validate_name
from redis_streaming._redis.replies import as_text
from redis_streaming.errors import ConfigurationError

__all__ = [
    "ServiceEvent",
    "ServiceEventType",
    "ServiceInstance",
    "field_changes",
    "instance_from_fields",
]

log = logging.getLogger(__name__)

_PROTOCOL = re.compile(r"[a-z][a-z0-9+.-]{0,31}")
_BAD_HOST = re.compile(r"[\s/?#@]")
_MAX_WEIGHT = 1_000_000


@dataclass(frozen=True, eq=True)
class ServiceInstance:
    """One registered instance of a service.

    - ``service`` and ``instance_id``: 1 to 200 characters from ``A-Z a-z 0-9 . _ -``;
      anything else raises :class:`~redis_streaming.errors.InvalidName`.
    - ``host`` (name or IP address, no scheme) and ``port`` (1 to 65535) say where to reach it.
    - ``protocol``: lower-case scheme such as ``http``, ``https``, ``tcp`` or ``grpc``; it
      chooses the default health check (HTTP for ``http``/``https``, TCP otherwise).
    - ``weight``: 0 to 1,000,000, the share of the ``weighted`` strategy (0 = never picked).
    - ``metadata``: string to string, filterable in discovery. ``health_url`` (full URL) and
      ``health_check`` (``http``, ``tcp`` or ``none``) steer the active health checks.
    - ``healthy``: excluded from ``healthy_only`` discovery when false. Health checks and
      :meth:`ServiceRegistry.update` change it in Redis.
    - ``ephemeral``: expires ``ttl_s`` after its last heartbeat (default). A persistent
      instance (``ephemeral=False``) stays until it is deregistered.

    Instances are immutable values; derive changed ones with :meth:`replace`. Two instances are
    equal when every field is equal; they hash by ``(service, instance_id)``.
    """

    service: str
    instance_id: str
    host: str
    port: int
    protocol: str = "http"
    weight: int = 100
    metadata: Mapping[str, str] = field(default_factory=dict)
    healthy: bool = True
    ephemeral: bool = True

    def __post_init__(self) -> None:
        validate_name(self.service, "service")
        validate_name(self.instance_id, "instance")
        if not isinstance(self.host, str) or not 0 < len(self.host) <= 255:
            raise ConfigurationError(
                f"invalid host {self.host!r} of instance {self.instance_id!r}: give a host name "
                "or IP address of 1 to 255 characters"
            )
        if _BAD_HOST.search(self.host):
            raise ConfigurationError(
                f"invalid host {self.host!r} of instance {self.instance_id!r}: give a bare host "
                "name or IP address, without scheme, path, spaces or credentials"
            )
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise ConfigurationError(f"port must be an int, got {self.port!r}")
        if not 1 <= self.port <= 65535:
            raise ConfigurationError(
                f"invalid port {self.port} of instance {self.instance_id!r}: use 1 to 65535"
            )
        protocol = self.protocol.lower() if isinstance(self.protocol, str) else self.protocol
        if not isinstance(protocol, str) or not _PROTOCOL.fullmatch(protocol):
            raise ConfigurationError(
                f"invalid protocol {self.protocol!r}: use a URL scheme such as 'http', 'https', "
                "'tcp' or 'grpc' (a letter, then letters, digits, '+', '.' or '-')"
            )
        object.__setattr__(self, "protocol", protocol)
        if isinstance(self.weight, bool) or not isinstance(self.weight, int):
            raise ConfigurationError(f"weight must be an int, got {self.weight!r}")
        if not 0 <= self.weight <= _MAX_WEIGHT:
            raise ConfigurationError(
                f"invalid weight {self.weight}: use 0 to {_MAX_WEIGHT} (0 = never chosen by the "
                "weighted strategy)"
            )
        if not isinstance(self.metadata, Mapping):
            raise ConfigurationError(
                f"metadata must be a mapping of str to str, got {type(self.metadata).__name__}"
            )
        metadata = dict(self.metadata)  # a private copy: the caller's dict may change later
        for k, v in metadata.items():
            if not isinstance(k, str) or not k or not isinstance(v, str):
                raise ConfigurationError(
                    f"metadata entry {k!r}: {v!r} is not a non-empty str key with a str value; "
                    "convert values with str() (and booleans to 'true'/'false') first"
                )
        object.__setattr__(self, "metadata", metadata)
        for name in ("healthy", "ephemeral"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"{name} must be a bool, got {getattr(self, name)!r}")

    def __hash__(self) -> int:
        return hash((self.service, self.instance_id))

    @property
    def key(self) -> tuple[str, str]:
        """``(service, instance_id)``: what identifies the instance in the registry."""
        return (self.service, self.instance_id)

    @property
    def url(self) -> str:
        """``protocol://host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{self.protocol}://{host}:{self.port}"

    def replace(self, **changes: Any) -> ServiceInstance:
        """A copy with ``changes`` applied (validated like a new instance)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {
            "service": self.service,
            "instance_id": self.instance_id,
            "host": self.host,
            "port": self.port,
            "protocol": self.protocol,
            "weight": self.weight,
            "metadata": dict(self.metadata),
            "healthy": self.healthy,
            "ephemeral": self.ephemeral,
        }

    def to_fields(self) -> dict[str, str]:
        """The instance hash's fields, all strings (``metadata`` as a JSON object)."""
        return {
            "service": self.service,
            "instance_id": self.instance_id,
            "host": self.host,
            "port": str(self.port),
            "protocol": self.protocol,
            "weight": str(self.weight),
            "metadata": json.dumps(self.metadata, separators=(",", ":"), sort_keys=True),
            "healthy": _flag(self.healthy),
            "ephemeral": _flag(self.ephemeral),
        }


def _flag(value: bool) -> str:
    return "true" if value else "false"


def instance_from_fields(fields: Mapping[Any, Any]) -> ServiceInstance | None:
    """Build an instance from its hash fields (bytes or str); ``None`` when they are unusable
    (a hash written by something else, or half-deleted): such entries are skipped, not fatal."""
    raw = {as_text(k): as_text(v) for k, v in fields.items()}
    try:
        metadata = json.loads(raw.get("metadata") or "{}")
        return ServiceInstance(
            service=raw["service"],
            instance_id=raw["instance_id"],
            host=raw["host"],
            port=int(raw["port"]),
            protocol=raw.get("protocol", "http"),
            weight=int(raw.get("weight", "100")),
            metadata={str(k): str(v) for k, v in metadata.items()},
            healthy=raw.get("healthy", "true") == "true",
            ephemeral=raw.get("ephemeral", "true") == "true",
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        log.warning("registry: skipping an unreadable instance hash %r: %s", raw, exc)
        return None


class ServiceEventType(StrEnum):
    """What happened to an instance."""

    ADDED = "ADDED"
    """Registered, or registered again after it had expired or been removed."""
    UPDATED = "UPDATED"
    """Its metadata, weight or health changed, or a live registration was replaced."""
    REMOVED = "REMOVED"
    """Deregistered, or expired and swept."""


@dataclass(frozen=True)
class ServiceEvent:
    """One change of a service, as published on ``{ns}:svc:{<S>}:events``.

    ``instance`` is the instance after the change (for REMOVED: as it was when removed; ``None``
    only when its data was already gone). ``timestamp_ms`` is the Redis server's clock.
    """

    type: ServiceEventType
    service: str
    instance_id: str
    instance: ServiceInstance | None
    timestamp_ms: int = 0

    @classmethod
    def from_json(cls, data: str | bytes) -> ServiceEvent | None:
        """Parse an event published by the registry's scripts; ``None`` if it is not one."""
        try:
            obj = json.loads(data)
            fields = obj.get("instance")
            instance = instance_from_fields(fields) if isinstance(fields, dict) and fields else None
            return cls(
                type=ServiceEventType(obj["type"]),
                service=str(obj["service"]),
                instance_id=str(obj["instance_id"]),
                instance=instance,
                timestamp_ms=int(obj.get("ts", 0)),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("registry: ignoring an unreadable event %r: %s", data, exc)
            return None


def field_changes(**fields: Any) -> dict[str, Any]:
    """The fields of an update that are given (``None`` leaves a field as it is)."""
    return {name: value for name, value in fields.items() if value is not None}
