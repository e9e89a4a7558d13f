"""Settings: environment variables (prefix ``REDIS_STREAMING_``, nested with ``__``) and an
optional ``application.yaml`` in the working directory; the environment wins."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from redis_streaming import ConfigurationError, MQOptions, validate_name
from redis_streaming.registry import RegistryOptions

__all__ = [
    "ActuatorSettings",
    "AppSettings",
    "LoggingSettings",
    "MQSettings",
    "MetricsSettings",
    "RedisSettings",
    "RegistrySettings",
    "Settings",
    "TracingSettings",
    "load_settings",
]

ENV_PREFIX = "REDIS_STREAMING_"
YAML_FILE = "application.yaml"


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppSettings(_Section):
    """The application itself."""

    name: str = Field("redis-streaming-app", description="Application name; the default group.")
    version: str = Field("0.0.0", description="Application version, shown by /actuator/info.")
    instance_id: str | None = Field(
        None, description="Consumer id of this instance; unset = <host>-<pid>-<random>."
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server (actuator) binds to.")
    port: int = Field(8080, ge=0, le=65535, description="Port of the HTTP server (actuator).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value, "app name")


class RedisSettings(_Section):
    """The Redis connection."""

    url: str | None = Field(
        None,
        description="redis:// or rediss:// URL of the server (for a Redis Cluster: of any node, "
        "or redis+cluster:// / rediss+cluster://); unset starts a private embedded Valkey "
        "(needs the 'embedded' extra) - for development only.",
    )
    cluster: bool | None = Field(
        None,
        description="Use redis-py's Redis Cluster client. Unset = detect: a redis+cluster:// URL, "
        "else 'INFO cluster' at startup (then Redis must be reachable to start; set true or "
        "false to skip the check).",
    )
    max_connections: int = Field(
        200,
        ge=2,
        description="Connection pool size (with a cluster: per node); each owned partition holds "
        "one connection while its read blocks, so keep it above the partitions a process may "
        "own.",
    )
    socket_timeout_s: float = Field(
        10.0, gt=0, description="Socket read/write timeout; must exceed mq.block_ms."
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="Timeout to open a connection.")
    client_name: str | None = Field(None, description="CLIENT SETNAME; unset = the app name.")

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: bool | None, info: Any) -> bool | None:
        url = info.data.get("url")
        if value is True and not url:
            raise ValueError(
                "redis.cluster is true but redis.url is unset (the embedded server is not a "
                "cluster); set REDIS_STREAMING_REDIS__URL to a node of your cluster"
            )
        if value is False and url and url.lower().split("://", 1)[0].endswith("+cluster"):
            raise ValueError(
                f"redis.cluster is false but redis.url {url.split('://', 1)[0]}:// names a "
                "cluster; drop '+cluster' from the URL or set REDIS_STREAMING_REDIS__CLUSTER=true"
            )
        return value


class MQSettings(MQOptions):
    """The ``mq`` section: the framework's ``MQOptions`` plus listener discovery."""

    listener_packages: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Packages (dotted names) scanned for @listener functions at startup.",
    )
    housekeeping_interval_s: float = Field(
        60.0, gt=0, description="How often the retention housekeeper trims streams."
    )

    @field_validator("listener_packages", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_list(value)


ENDPOINT_IDS = (
    "beans",
    "configprops",
    "dlq",
    "env",
    "health",
    "info",
    "listeners",
    "loggers",
    "metrics",
    "prometheus",
    "services",
    "threaddump",
    "topics",
)


class ActuatorSettings(_Section):
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
        description="Bearer token required by every POST/DELETE endpoint; unset = they answer "
        "403. Use a long random value, e.g. from secrets.token_urlsafe().",
    )
    show_details: Literal["never", "when_authorized", "always"] = Field(
        "always", description="Health details: never, when_authorized (with the token), always."
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

    @field_validator("expose", "exclude", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_list(value)

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
        return _comma_list(value)

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


class MetricsSettings(_Section):
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


class TracingSettings(_Section):
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


class LoggingSettings(_Section):
    """Logging of the application."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Root log level."
    )
    format: str = Field(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", description="logging format string."
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Settings(BaseSettings):
    """Everything the starter configures, by section.

    Environment variables: ``REDIS_STREAMING_<SECTION>__<FIELD>`` (e.g.
    ``REDIS_STREAMING_MQ__DEFAULT_PARTITIONS=12``); lists are comma-separated or JSON. An
    ``application.yaml`` in the working directory (sections as top-level keys) is read too;
    environment variables win over it. Build with :func:`load_settings` to get a
    ``ConfigurationError`` naming the variable for a bad value.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
    )

    app: AppSettings = Field(default_factory=AppSettings, description="The application.")
    redis: RedisSettings = Field(default_factory=RedisSettings, description="Redis connection.")
    mq: MQSettings = Field(default_factory=MQSettings, description="Messaging.")
    registry: RegistrySettings = Field(
        default_factory=RegistrySettings, description="Service registry."
    )
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description="Metrics.")
    tracing: TracingSettings = Field(default_factory=TracingSettings, description="Tracing.")
    actuator: ActuatorSettings = Field(default_factory=ActuatorSettings, description="Actuator.")
    logging: LoggingSettings = Field(default_factory=LoggingSettings, description="Logging.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings, dotenv_settings, file_secret_settings]
        if Path(YAML_FILE).is_file():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=YAML_FILE))
        return tuple(sources)


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable of a settings field location, e.g. ``REDIS_STREAMING_MQ__X``."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return ENV_PREFIX + "__".join(p.upper() for p in parts)


def describe_error(exc: ValidationError) -> str:
    """One line per problem: variable, value and what to do."""
    lines = []
    for err in exc.errors():
        var = env_name(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if var in os.environ or not isinstance(err.get("input"), dict):
            where = f"{var}={os.environ.get(var, err.get('input'))!r}"
        else:  # a rule over several fields of a section: name the variables that are set
            related = sorted(n for n in os.environ if n.startswith(var + "__"))
            where = ", ".join(f"{n}={os.environ[n]!r}" for n in related) or var
        lines.append(f"{where}: {msg}. Fix the variable (or application.yaml) and restart")
    return "invalid settings:\n  " + "\n  ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`; a bad value raises ``ConfigurationError`` naming its variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(describe_error(exc)) from None
    except SettingsError as exc:
        raise ConfigurationError(
            f"invalid settings: {exc} ({exc.__cause__}); lists are comma-separated or JSON, "
            "nested fields use '__' (REDIS_STREAMING_MQ__RETRY__MAX_ATTEMPTS=3)"
        ) from None
