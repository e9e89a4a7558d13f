"""Options of the service registry (the ``registry`` settings section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from redis_streaming._redis.names import validate_name
from redis_streaming.errors import ConfigurationError

__all__ = ["RegistryOptions"]


class RegistryOptions(BaseModel):
    """Defaults of the ``registry`` settings section, handed to every registry component.

    Timing rules (checked): ``heartbeat_interval_s`` at most half of ``ttl_s``, so one late or
    lost heartbeat does not expire a live instance; ``health_check_timeout_s`` at most
    ``health_check_interval_s``. An instance that stops heartbeating is gone from discovery
    after ``ttl_s`` and removed (with a REMOVED event) within ``ttl_s + sweep_interval_s``.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    namespace: str = Field(
        "rs",
        description="Prefix of every registry key; separates applications sharing one Redis. "
        "Characters [A-Za-z0-9._-].",
    )
    ttl_s: float = Field(
        30.0,
        gt=0,
        description="Lifetime of an ephemeral instance without a heartbeat; after it the "
        "instance is no longer discovered and the sweeper removes it.",
    )
    heartbeat_interval_s: float = Field(
        10.0,
        gt=0,
        description="How often a Registration heartbeats its instance; at most half of ttl_s.",
    )
    sweep_interval_s: float = Field(
        5.0,
        gt=0,
        description="How often a RegistrySweeper removes expired instances and publishes "
        "their REMOVED events.",
    )
    discovery_cache_s: float = Field(
        0.0,
        ge=0,
        description="How long ServiceDiscovery reuses a service's instance list it read "
        "(per process); 0 reads Redis on every call. A second or two spares Redis under heavy "
        "choose() traffic, at the cost of seeing new, changed and removed instances that much "
        "later; instances past their expiry are still never returned.",
    )
    health_check_interval_s: float = Field(
        10.0, gt=0, description="How often the HealthChecker probes every instance."
    )
    health_check_timeout_s: float = Field(
        2.0,
        gt=0,
        description="Longest time one health probe (TCP connect or HTTP GET) may take; a "
        "slower probe counts as a failure. At most health_check_interval_s.",
    )
    health_check_concurrency: int = Field(
        32, ge=1, le=10_000, description="Most health probes running at the same time."
    )
    health_check_path: str = Field(
        "/actuator/health",
        description="Path probed with HTTP GET on http(s) instances without a health_url "
        "metadata entry; a 2xx answer means healthy.",
    )
    health_check_verify_tls: bool = Field(
        True, description="Verify certificates when probing https health URLs."
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        return validate_name(value, "namespace")

    @field_validator("health_check_path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise ConfigurationError(
                f"health_check_path {value!r} must start with '/' and contain no spaces, "
                "e.g. '/actuator/health'"
            )
        return value

    @model_validator(mode="after")
    def _check_timing(self) -> RegistryOptions:
        if self.heartbeat_interval_s * 2 > self.ttl_s:
            raise ConfigurationError(
                f"heartbeat_interval_s ({self.heartbeat_interval_s}) must be at most half of "
                f"ttl_s ({self.ttl_s}) so one late heartbeat does not expire a live instance; "
                "lower heartbeat_interval_s or raise ttl_s"
            )
        if self.health_check_timeout_s > self.health_check_interval_s:
            raise ConfigurationError(
                f"health_check_timeout_s ({self.health_check_timeout_s}) must not exceed "
                f"health_check_interval_s ({self.health_check_interval_s}); lower the timeout "
                "or check less often"
            )
        return self

    @property
    def ttl_ms(self) -> int:
        """``ttl_s`` in whole milliseconds (at least 1)."""
        return max(1, round(self.ttl_s * 1000))
