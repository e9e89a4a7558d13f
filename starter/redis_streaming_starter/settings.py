"""Settings: environment variables (prefix ``REDIS_STREAMING_``, nested with ``__``), then a
``.env`` file, the active profiles' ``application-<profile>.yaml`` and ``application.yaml`` in
the working directory (:mod:`.config_files`); the environment wins."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Annotated, Any, Literal, TypeVar, overload

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from redis_streaming import ConfigurationError, MQOptions, RetryPolicy
from redis_streaming.integration import validate_name
from redis_streaming_starter.config_files import ConfigSources, discover, set_in_file
from redis_streaming_starter.masking import shown_value
from redis_streaming_starter.runtime_settings import RuntimeSettings
from redis_streaming_starter.setting_names import unknown_names
from redis_streaming_starter.settings_sections import (
    ActuatorSettings,
    MetricsSettings,
    RegistrySettings,
    Section,
    TracingSettings,
    comma_list,
)
from redis_streaming_starter.settings_sentinel import SentinelSettings
from redis_streaming_starter.settings_tls import TlsSettings

__all__ = [
    "ActuatorSettings",
    "AppSettings",
    "LoggingSettings",
    "MQSettings",
    "MetricsSettings",
    "RedisSettings",
    "RegistrySettings",
    "SentinelSettings",
    "Settings",
    "TracingSettings",
    "load_settings",
]

ENV_PREFIX = "REDIS_STREAMING_"


class AppSettings(Section):
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


class RedisSettings(Section):
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
    sentinel: SentinelSettings | None = Field(
        None,
        description="Redis behind Sentinel: the client finds the master through the Sentinels "
        "and follows a failover. Instead of url. See docs/high-availability.md.",
    )
    tls: TlsSettings = Field(
        default_factory=TlsSettings,
        description="TLS for rediss:// URLs: CA, client certificate, verification.",
    )

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

    @model_validator(mode="after")
    def _one_way_in(self) -> RedisSettings:
        if self.sentinel is not None and self.url:
            raise ValueError(
                "redis.url and redis.sentinel are both set; with Sentinel the client finds the "
                "master through the Sentinels, so unset REDIS_STREAMING_REDIS__URL (or drop the "
                "redis.sentinel section to connect to one server)"
            )
        if self.sentinel is not None and self.tls.configured:
            raise ValueError(
                "redis.tls is set with redis.sentinel; TLS to Sentinel and the servers it "
                "manages is not supported: remove the REDIS_STREAMING_REDIS__TLS__* settings, or "
                "connect with a rediss:// redis.url instead of redis.sentinel"
            )
        if self.sentinel is not None and self.cluster:
            raise ValueError(
                "redis.cluster is true but redis.sentinel is set; a Redis Cluster fails over "
                "by itself (no Sentinel): keep one of the two"
            )
        return self


class RetrySettings(RetryPolicy):
    """The ``mq.retry`` section: the framework's ``RetryPolicy``, whose ``non_retryable`` an
    environment variable gives as names separated by commas (or as a JSON list)."""

    non_retryable: Annotated[tuple[Any, ...], NoDecode] = Field(
        (), description="Exception types (or dotted names) that go to the dead letters at once."
    )


class MQSettings(MQOptions):
    """The ``mq`` section: the framework's ``MQOptions`` plus listener discovery."""

    retry: RetrySettings = Field(
        default_factory=RetrySettings, description="Retry policy of subscriptions without one."
    )

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
        return comma_list(value)


class LoggingSettings(Section):
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
    ``REDIS_STREAMING_MQ__DEFAULT_PARTITIONS=12``); lists are comma-separated or JSON. From
    the working directory, a ``.env`` file (variables as in the environment), then for each
    active profile (``REDIS_STREAMING_PROFILES=prod,eu``) its ``application-<profile>.yaml``,
    the last profile winning, then ``application.yaml`` (sections as top-level keys) are read
    too, each losing to the ones before; the environment wins over all files. A name that is
    no setting (``REDIS_STREAMING_REDIS_URL`` with one underscore, an ``actuater:`` section,
    an unknown argument) and a bad value raise ``ConfigurationError`` naming the variable (or
    key) and what to do, whether built with :func:`load_settings` or directly.

    Subclass it to add the application's own sections (Spring's ``@ConfigurationProperties``):
    ``class ShopSettings(Settings): shop: Shop = Shop()`` reads ``REDIS_STREAMING_SHOP__*`` and
    a ``shop:`` section of ``application.yaml``; build it with
    ``load_settings(settings_cls=ShopSettings)``.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        # Unknown names are reported before pydantic sees them (setting_names); "ignore" lets
        # load_settings(foreign_sections=True) pass over the sections of another class.
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
    runtime: RuntimeSettings = Field(
        default_factory=RuntimeSettings, description="Stream-processing jobs (@job)."
    )

    # What these settings were read from (config_files.discover); None when built without
    # reading anything (model_validate, model_construct).
    _sources: ConfigSources | None = PrivateAttr(default=None)

    def __init__(self, **values: Any) -> None:
        sources = discover(_PROFILES.get(), isolated=_ISOLATED.get())
        problems = unknown_names(
            type(self),
            arguments=values,
            defaults=_DEFAULTS.get(),
            files=sources.files,
            environ=os.environ if sources.environment else {},
            foreign_sections=_FOREIGN_SECTIONS.get(),
        )
        if problems:
            raise ConfigurationError(_problems(problems, "Fix the name and restart"))
        token = _SOURCES.set(sources)
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigurationError(describe_error(exc, self._prefix(), sources)) from None
        except SettingsError as exc:
            raise ConfigurationError(
                f"invalid settings: {exc} ({exc.__cause__}); lists are comma-separated or JSON, "
                "nested fields use '__' (REDIS_STREAMING_MQ__RETRY__MAX_ATTEMPTS=3)"
            ) from None
        finally:
            _SOURCES.reset(token)
        self._sources = sources

    @property
    def active_profiles(self) -> tuple[str, ...]:
        """The profiles these settings were loaded with (``REDIS_STREAMING_PROFILES`` or
        ``load_settings(profiles=...)``), in the order given; those without a file too."""
        return self._sources.profiles if self._sources is not None else ()

    @classmethod
    def _prefix(cls) -> str:
        return str(cls.model_config.get("env_prefix") or "")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        found = _SOURCES.get() or discover(_PROFILES.get(), isolated=_ISOLATED.get())
        defaults = _DEFAULTS.get()
        if not found.environment:  # load_settings(isolated=True): code only, for tests
            return (init_settings, _CodeDefaults(settings_cls, defaults or {}))
        # First wins: arguments, the environment, .env, the profiles' files (the last profile
        # first), application.yaml, defaults in code. One source per file: pydantic-settings
        # merges sources field by field, but one source with several files section by section.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if found.dotenv is not None:
            sources.append(DotEnvSettingsSource(settings_cls, env_file=found.dotenv.path))
        sources.append(file_secret_settings)
        sources.extend(
            YamlConfigSettingsSource(settings_cls, yaml_file=f.path) for f in found.yaml_files
        )
        if defaults:
            sources.append(_CodeDefaults(settings_cls, defaults))
        return tuple(sources)


_DEFAULTS: ContextVar[dict[str, Any] | None] = ContextVar("settings_defaults", default=None)
_FOREIGN_SECTIONS: ContextVar[bool] = ContextVar("settings_foreign_sections", default=False)
_ISOLATED: ContextVar[bool] = ContextVar("settings_isolated", default=False)
_PROFILES: ContextVar[Sequence[str] | str | None] = ContextVar("settings_profiles", default=None)
_SOURCES: ContextVar[ConfigSources | None] = ContextVar("settings_sources", default=None)


def config_sources(settings: Settings) -> ConfigSources:
    """What ``settings`` were read from; for settings built without reading anything
    (``Settings.model_validate``), what loading them now would read, without profiles."""
    if settings._sources is not None:
        return settings._sources
    return ConfigSources(environment=True, yaml_files=discover((), isolated=False).yaml_files)


class _CodeDefaults(PydanticBaseSettingsSource):
    """``load_settings(defaults=...)``: values below every other source (sections merge)."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.values = values

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


def env_name(loc: tuple[int | str, ...], prefix: str = ENV_PREFIX) -> str:
    """The environment variable of a settings field location, e.g. ``REDIS_STREAMING_MQ__X``."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return prefix + "__".join(p.upper() for p in parts)


def _problems(lines: list[str], fix: str) -> str:
    """One line for one problem, else a list; each says what to do."""
    lines = [f"{line}{' ' if line.endswith('?') else '. '}{fix}" for line in lines]
    if len(lines) == 1:
        return f"invalid settings: {lines[0]}"
    return "invalid settings:\n  " + "\n  ".join(lines)


def describe_error(
    exc: ValidationError, prefix: str = ENV_PREFIX, read: ConfigSources | None = None
) -> str:
    """Per problem: the variable (or the line of ``.env`` or of a YAML file of ``read`` that
    set it), its value (``******`` when its name looks secret or it is a URL with a password)
    and what to do."""
    lines = []
    for err in exc.errors():
        var = env_name(err["loc"], prefix)
        msg = err["msg"].removeprefix("Value error, ")
        parts = tuple(str(p) for p in err["loc"] if not isinstance(p, int))
        in_file = None if var in os.environ or read is None else set_in_file(read, parts, prefix)
        if in_file is not None:
            where = f"{in_file}={shown_value(var, err.get('input'))}"
        elif var in os.environ or not isinstance(err.get("input"), dict):
            where = f"{var}={shown_value(var, os.environ.get(var, err.get('input')))}"
        else:  # a rule over several fields of a section: name the variables that are set
            related = sorted(n for n in os.environ if n.startswith(var + "__"))
            where = ", ".join(f"{n}={shown_value(n, os.environ[n])}" for n in related) or var
        lines.append(f"{where}: {msg}")
    return _problems(lines, "Fix the variable (or the file) and restart")


S = TypeVar("S", bound=Settings)


@overload
def load_settings(
    *,
    settings_cls: type[S],
    defaults: dict[str, Any] | None = None,
    foreign_sections: bool = False,
    isolated: bool = False,
    profiles: Sequence[str] | str | None = None,
    **overrides: Any,
) -> S: ...


@overload
def load_settings(
    *,
    defaults: dict[str, Any] | None = None,
    foreign_sections: bool = False,
    isolated: bool = False,
    profiles: Sequence[str] | str | None = None,
    **overrides: Any,
) -> Settings: ...


def load_settings(
    *,
    settings_cls: type[Settings] = Settings,
    defaults: dict[str, Any] | None = None,
    foreign_sections: bool = False,
    isolated: bool = False,
    profiles: Sequence[str] | str | None = None,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings` (or ``settings_cls``, a subclass with the application's own
    sections); an unknown name or a bad value raises ``ConfigurationError`` naming the variable.

    ``overrides`` (``mq={"batch_size": 50}``) win over everything; ``defaults`` (same shape,
    ``defaults={"app": {"name": "shop"}}``) lose to everything: the environment and
    ``application.yaml`` can change them, as Spring Boot's default properties. Sections merge
    field by field in both. ``foreign_sections`` accepts variables and ``application.yaml``
    sections that resemble no section of ``settings_cls`` (those of another application's
    ``Settings`` subclass; the CLI uses it), while a near miss such as
    ``REDIS_STREAMING_REDIS_URL`` is still an error.

    ``profiles`` (``["prod", "eu"]`` or ``"prod,eu"``) replaces ``REDIS_STREAMING_PROFILES``:
    each profile's ``application-<profile>.yaml`` is read over ``application.yaml``, the last
    profile winning; a profile without its file is active all the same.

    ``isolated`` reads nothing but ``overrides`` and ``defaults``: no environment variable, no
    ``.env``, no profile and no ``application*.yaml`` (what tests want: the shell and the working
    directory cannot change them; ``redis_streaming_starter.testing`` uses it).
    """
    token = _DEFAULTS.set(defaults)
    foreign = _FOREIGN_SECTIONS.set(foreign_sections)
    alone = _ISOLATED.set(isolated)
    chosen = _PROFILES.set(profiles)
    try:
        return settings_cls(**overrides)
    finally:
        _PROFILES.reset(chosen)
        _ISOLATED.reset(alone)
        _FOREIGN_SECTIONS.reset(foreign)
        _DEFAULTS.reset(token)
