"""Service registry: the options, this application's own instance and the health checker. The
container builds the registry, discovery, registration and sweeper from the options directly."""

from __future__ import annotations

import socket

from redis_streaming import ConfigurationError, __version__
from redis_streaming.registry import (
    HealthChecker,
    RegistryOptions,
    ServiceDiscovery,
    ServiceInstance,
    ServiceRegistry,
)
from redis_streaming_starter.settings import Settings

__all__ = ["make_health_checker", "own_instance", "registry_options"]

_WILDCARDS = {"0.0.0.0", "::", ""}


def registry_options(settings: Settings) -> RegistryOptions:
    """The ``registry`` section as ``RegistryOptions``; its namespace follows ``mq.namespace``
    unless ``registry.namespace`` is set."""
    cfg = settings.registry
    data = {name: getattr(cfg, name) for name in RegistryOptions.model_fields}
    if "namespace" not in cfg.model_fields_set:
        data["namespace"] = settings.mq.namespace
    return RegistryOptions(**data)


def own_instance(settings: Settings, instance_id: str) -> ServiceInstance:
    """This application as a registry instance: service, address, and metadata (``version``,
    ``framework``, ``actuator`` and ``health_url`` when the actuator serves health)."""
    cfg, app, actuator = settings.registry, settings.app, settings.actuator
    host = cfg.host or (socket.gethostname() if app.host in _WILDCARDS else app.host)
    port = cfg.port or app.port
    if not port:
        raise ConfigurationError(
            "registry.enabled with app.port 0 (a random port): set REDIS_STREAMING_REGISTRY__PORT "
            "to the port other services should use"
        )
    metadata = {"version": app.version, "framework": f"redis-streaming {__version__}"}
    if actuator.enabled:
        mport = actuator.port or port
        base = f"{cfg.protocol}://{host}:{mport}{actuator.base_path}"
        metadata["actuator"] = base
        if actuator.is_exposed("health"):
            metadata["health_url"] = f"{base}/health/readiness"
    metadata.update(cfg.metadata)
    return ServiceInstance(
        service=cfg.service or app.name,
        instance_id=instance_id,
        host=host,
        port=port,
        protocol=cfg.protocol,
        weight=cfg.weight,
        metadata=metadata,
    )


def make_health_checker(
    registry: ServiceRegistry, discovery: ServiceDiscovery, settings: Settings
) -> HealthChecker:
    """The active health checker of ``registry.health_check_services``; of every service when
    that list is empty."""
    services = settings.registry.health_check_services or None
    return HealthChecker(registry, discovery, registry.options, services=services)
