"""Building the application under test: its settings (isolated, the test's server and
namespace, fast rebalancing), the application (rebuilt from the user's, or from a factory), and
the container's providers that tests override."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dependency_injector import providers
from pydantic import BaseModel

from redis_streaming import ConfigurationError
from redis_streaming_starter.application import RedisStreamingApplication
from redis_streaming_starter.settings import Settings, load_settings

__all__ = ["FAST_MQ", "Built", "build", "provider_of", "settings_values"]

FAST_MQ: dict[str, float] = {
    "lease_ttl_s": 3.0,
    "rebalance_interval_s": 0.5,
    "block_ms": 300,
    "shutdown_timeout_s": 5.0,
}
"""The ``mq`` values an application under test gets unless the test gives others: it owns its
partitions at once and stops within a second (a stuck handler is cancelled after 5 s)."""


def settings_values(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """``app_test(settings=...)`` checked: sections as dicts, no ``redis.url`` and no
    ``mq.namespace`` (the test's own)."""
    if settings is not None and not isinstance(settings, Mapping):
        raise ConfigurationError(
            "app_test(settings=...) takes the sections as a dict, e.g. "
            "settings={'mq': {'batch_size': 10}}; it builds the Settings itself, with the "
            "test's server and namespace"
        )
    given = dict(settings or {})
    for section, name in (("redis", "url"), ("mq", "namespace")):
        if name in _section(given, section):
            raise ConfigurationError(
                f"app_test sets {section}.{name} itself; pass app_test(..., {name}=...)"
            )
    return given


@dataclass
class Built:
    """The application under test, and the FastAPI app a factory returned around it."""

    app: RedisStreamingApplication
    asgi: Any = None


def build(
    source: Any,
    given: dict[str, Any],
    *,
    url: str,
    namespace: str,
    settings_cls: type[Settings] | None,
    isolated: bool,
    runners: bool,
) -> Built:
    """The application of ``source`` (an application, rebuilt, or a factory called with the
    settings) on ``url`` in ``namespace``."""

    def load(cls: type[Settings]) -> Settings:
        values = dict(given)
        values["redis"] = {**_section(values, "redis"), "url": url}
        values["mq"] = {**_section(values, "mq"), "namespace": namespace}
        return load_settings(
            settings_cls=cls, defaults={"mq": FAST_MQ}, isolated=isolated, **values
        )

    if isinstance(source, RedisStreamingApplication):
        return Built(_rebuild(source, load(settings_cls or type(source.settings)), runners))
    settings = load(settings_cls or _settings_class(source))
    made = source(settings)
    built = Built(made) if isinstance(made, RedisStreamingApplication) else _inside(made)
    if built.app.settings is not settings:
        raise ConfigurationError(
            "the factory did not build the application with the settings it was given; pass "
            "them on: RedisStreamingApplication(settings=settings, ...)"
        )
    if not runners:
        built.app._runners.clear()
    return built


def _rebuild(
    source: RedisStreamingApplication, settings: Settings, runners: bool
) -> RedisStreamingApplication:
    """A new application of ``source``'s container class, listener packages, lifecycle hooks
    and info contributors, and (with ``runners``) its runners."""
    container = getattr(source.container, "declarative_parent", None)
    if container is None:
        raise ConfigurationError(
            "app_test rebuilds the application from its container class, but this one was "
            "built from a container instance; give app_test a factory f(settings) that builds "
            "the application"
        )
    given = [p for p in source.listener_packages if p not in settings.mq.listener_packages]
    app = RedisStreamingApplication(settings=settings, container=container, listener_packages=given)
    for hook in source._hooks.startup:
        app.on_startup(hook)
    for hook in source._hooks.shutdown:
        app.on_shutdown(hook)
    for name, contributor in source.info_contributors.items():
        app.info_contributor(name)(contributor)
    if runners:
        for runner in source._runners:
            app.runner(runner)
    return app


def _inside(asgi: Any) -> Built:
    """A factory's FastAPI app that keeps the application in ``state.streaming``."""
    app = getattr(getattr(asgi, "state", None), "streaming", None)
    if not isinstance(app, RedisStreamingApplication):
        raise ConfigurationError(
            f"the factory returned {asgi!r}; return the RedisStreamingApplication, or a "
            "FastAPI app that keeps it in app.state.streaming"
        )
    return Built(app, asgi)


def _section(values: dict[str, Any], name: str) -> dict[str, Any]:
    """One section of ``settings=`` as a dict (a pydantic model: the values it was given)."""
    section = values.get(name) or {}
    if isinstance(section, BaseModel):
        return section.model_dump(exclude_unset=True)
    return dict(section)


def _settings_class(factory: Callable[..., Any]) -> type[Settings]:
    """The ``Settings`` subclass a factory's first parameter is annotated with, else
    ``Settings``."""
    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return Settings
    if not params:
        raise ConfigurationError(
            f"{factory!r} takes no parameter; app_test calls a factory with the settings "
            "(def create_app(settings: Settings | None = None) -> RedisStreamingApplication)"
        )
    try:
        hint = typing.get_type_hints(factory).get(params[0].name)
    except Exception:
        hint = params[0].annotation
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, Settings):
            return candidate
    return Settings


def provider_of(container: Any, provider: Any) -> Any:
    """The container's own provider for ``provider``: a name, one of the container's
    providers, or one of its class's (``ShopContainer.store``)."""
    if isinstance(provider, str):
        found = getattr(container, provider, None)
        if isinstance(found, providers.Provider):
            return found
    elif isinstance(provider, providers.Provider):
        own = container.providers
        if any(p is provider for p in own.values()):
            return provider
        declared = getattr(container, "declarative_parent", None)
        for name, p in getattr(declared, "providers", {}).items():
            if p is provider:
                return own[name]
    kind = getattr(container, "declarative_parent", None) or type(container)
    raise ConfigurationError(
        f"{provider!r} is not a provider of {kind.__name__}; override one of its providers "
        "(YourContainer.name) or give its name"
    )
