"""The operations sections of the settings: actuator, service registry, metrics and tracing
(``Settings`` in :mod:`redis_streaming_starter.settings` puts them together)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from redis_streaming.integration import names_list
from redis_streaming.registry import RegistryOptions

__all__ = [
    "ENDPOINT_IDS",
    "MIN_TOKEN_CHARS",
    "SENSITIVE_ENDPOINTS",
    "ActuatorSettings",
    "MetricsSettings",
    "RegistrySettings",
    "Section",
    "TracingSettings",
    "comma_list",
]


def comma_list(value: Any) -> Any:
    """A list from a string: separated by commas, or a JSON list."""
    if isinstance(value, str):
        return names_list(value)
    return value


class Section(BaseModel):
    """A settings section: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


MIN_TOKEN_CHARS = 16

ENDPOINT_IDS = (
    "beans",
    "configprops",
    "dlq",
    "env",
    "health",
    "info",
    "jobs",
    "listeners",
    "loggers",
    "metrics",
    "prometheus",
    "services",
    "threaddump",
    "topics",
)
SENSITIVE_ENDPOINTS = ("configprops", "dlq", "env", "threaddump")
"""Endpoint ids whose reads need the token under ``actuator.secure_reads``: they show message
contents, configuration or code structure."""


class ActuatorSettings(Section):
    """The actuator endpoints (Spring Boot Actuator conventions)."""

    enabled: bool = Field(True, description="Serve the actuator endpoints.")
    base_path: str = Field("/actuator", description="Path prefix of the actuator endpoints.")
    expose: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["health", "info"],
        description="Endpoint ids to expose ('*' for all); comma-separated in env vars. Ids: "
        + ", ".join(ENDPOINT_IDS)
        + ".",
    )
    exclude: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Endpoint ids never exposed, even when 'expose' names them or is '*'.",
    )
    token: SecretStr | None = Field(
        None,
        description="Bearer token required by every POST/DELETE endpoint (and by the sensitive "
        "reads, see secure_reads); unset = they answer 403. At least 16 characters, no spaces: "
        "use a long random value, e.g. from secrets.token_urlsafe().",
    )
    secure_reads: bool | None = Field(
        None,
        description="Require the token for the sensitive reads too: dlq (payloads, tracebacks), "
        "env, configprops and threaddump. Unset = required when app.host is not a loopback "
        "address (e.g. 0.0.0.0), not required on 127.0.0.1.",
    )
    show_details: Literal["never", "when_authorized", "always"] = Field(
        "never",
        description="Health details and components (listener errors, addresses): never, "
        "when_authorized (with the token), always. The status is always shown.",
    )
    show_values: Literal["never", "when_authorized", "always"] = Field(
        "never",
        description="Values in /env and /configprops: never (all '******'), when_authorized (with "
        "the token), always. Secrets (passwords, tokens, credentials in URLs) are always masked.",
    )
    port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve the actuator on its own port (run() only); unset = on app.port.",
    )
    links_base_url: str | None = Field(
        None,
        description="Absolute URL the discovery page's links start with, e.g. "
        "https://shop.example.com; unset = the links are paths (/actuator/health). Never taken "
        "from the request's Host header.",
    )

    @field_validator("expose", "exclude", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("expose", "exclude")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {*ENDPOINT_IDS, "*"})
        if unknown:
            raise ValueError(
                f"unknown endpoint id(s) {', '.join(unknown)}; "
                f"known: '*', {', '.join(ENDPOINT_IDS)}"
            )
        return value

    @field_validator("token")
    @classmethod
    def _strong(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        where = "REDIS_STREAMING_ACTUATOR__TOKEN (actuator.token)"
        advice = "use e.g. python -c 'import secrets; print(secrets.token_urlsafe())'"
        if not text.strip():
            raise ValueError(
                f"{where} is blank, so no request could ever match it; set a long random value "
                f"({advice}) or unset it to turn the POST/DELETE endpoints off"
            )
        if any(c.isspace() for c in text):
            raise ValueError(
                f"{where} contains whitespace, which a bearer token cannot carry; {advice}"
            )
        if len(text) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"{where} has {len(text)} characters, fewer than {MIN_TOKEN_CHARS}: too easy "
                f"to guess; {advice}"
            )
        return value

    @field_validator("links_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
            raise ValueError(
                "must be an absolute http:// or https:// URL without query, e.g. "
                "https://shop.example.com"
            )
        return value.rstrip("/")

    @field_validator("base_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or value.endswith("/"):
            raise ValueError("must start with '/' and not end with '/', e.g. /actuator")
        return value

    def is_exposed(self, endpoint: str) -> bool:
        """Whether ``endpoint`` is served: named by (or '*' in) ``expose`` and not excluded."""
        if endpoint in self.exclude:
            return False
        return "*" in self.expose or endpoint in self.expose


class RegistrySettings(RegistryOptions):
    """The ``registry`` section: the framework's ``RegistryOptions`` plus this application's own
    registration (it registers itself on start, heartbeats, deregisters on graceful stop)."""

    namespace: str = Field(
        "rs",
        description="Prefix of every registry key; unset = mq.namespace, so one setting "
        "separates applications sharing one Redis. Characters [A-Za-z0-9._-].",
    )
    enabled: bool = Field(
        False, description="Register this application in the service registry and run the sweeper."
    )
    service: str | None = Field(None, description="Service name to register as; unset = app.name.")
    host: str | None = Field(
        None,
        description="Host others reach this instance at; unset = app.host, or this machine's "
        "name when app.host is a wildcard address (0.0.0.0, ::).",
    )
    port: int | None = Field(
        None, ge=1, le=65535, description="Port others reach this instance at; unset = app.port."
    )
    protocol: str = Field("http", description="URL scheme of the instance (http, https, tcp...).")
    weight: int = Field(100, ge=0, le=1_000_000, description="Weight for weighted choice.")
    metadata: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Metadata of the instance: k=v pairs, comma-separated (or a JSON object). "
        "version, actuator and health_url are added.",
    )
    sweeper: bool = Field(
        True, description="Run the sweeper removing expired instances (cheap and atomic)."
    )
    health_checks: bool = Field(
        False,
        description="Actively probe registered instances (HTTP or TCP), marking them unhealthy.",
    )
    health_check_services: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Services the health checker probes; empty = every service.",
    )

    @field_validator("health_check_services", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("metadata", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("{"):
            return json.loads(text)
        out: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in text.split(","))):
            key, sep, val = pair.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{pair!r} is not key=value; write e.g. region=eu,zone=a")
            out[key.strip()] = val.strip()
        return out


class MetricsSettings(Section):
    """OpenTelemetry metrics, exported as Prometheus text at /actuator/prometheus."""

    enabled: bool = Field(
        True, description="Record the framework's metrics (an OpenTelemetry SDK MeterProvider)."
    )
    gauge_interval_s: float = Field(
        15.0,
        gt=0,
        description="How often lag, pending, length, retry and DLQ gauges are read from Redis "
        "in the background (one pipeline per read).",
    )
    gauge_max_age_s: float = Field(
        1.0,
        ge=0,
        description="A scrape re-reads the gauges from Redis when they are older than this.",
    )
    gauge_timeout_s: float = Field(
        2.0, gt=0, description="Time limit of one gauge read; on expiry the last values stay."
    )
    gauge_max_partitions: int = Field(
        1024, ge=1, description="Most partitions whose gauges one read covers (bounds its cost)."
    )
    process: bool = Field(
        True,
        description="Process and Python metrics (CPU, memory, open file descriptors, threads, "
        "uptime, garbage collections), read when the metrics are collected.",
    )
    http: bool = Field(
        True,
        description="HTTP server metrics of the application's and the actuator's FastAPI apps: "
        "request duration by method, route template and status, and requests in progress.",
    )


class TracingSettings(Section):
    """OpenTelemetry tracing: traceparent propagated from producer to consumer."""

    enabled: bool = Field(
        False,
        description="Producers inject traceparent into headers; listeners run in a CONSUMER "
        "span that continues the producer's trace.",
    )
    exporter: Literal["none", "console", "otlp"] = Field(
        "otlp",
        description="Where spans go: otlp (OTLP/HTTP, needs the 'otlp' extra), console (stdout), "
        "none (spans are created and propagated but not exported).",
    )
    otlp_endpoint: str = Field(
        "http://127.0.0.1:4318/v1/traces", description="OTLP/HTTP traces endpoint."
    )
    sample_ratio: float = Field(
        1.0, ge=0, le=1, description="Fraction of new traces sampled (parent-based)."
    )
    set_global: bool = Field(
        True,
        description="Install the tracer provider as OpenTelemetry's global one (so your own "
        "spans join the trace) unless one is set already, which is then used as is.",
    )
