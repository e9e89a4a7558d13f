"""Actuator endpoints ``/env``, ``/env/{name}``, ``/configprops`` and ``/configprops/{prefix}``.

Values show as ``******`` unless ``actuator.show_values`` allows them for the request; secrets
stay masked even then: names containing password, passwd, secret, token, key or credential,
values of ``SecretStr`` fields, and in URLs the password (``redis://:******@host``) and every
secret-looking query parameter (``?password=******``), by :mod:`redis_streaming_starter.masking`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, Field, SecretStr
from pydantic_core import to_jsonable_python

from redis_streaming_starter.actuator.context import ActuatorContext
from redis_streaming_starter.config_files import (
    DOTENV_FILE,
    ConfigFile,
    ConfigSources,
    dotenv_variables,
    yaml_properties,
)
from redis_streaming_starter.masking import MASK, is_secret_name, mask_text
from redis_streaming_starter.settings import ENV_PREFIX, Settings, config_sources

__all__ = ["ConfigProps", "Env", "EnvProperty", "routes"]

_STARTER = "redis_streaming_starter."
SETTINGS_SOURCE = "settings"
ENV_SOURCE = "systemEnvironment"
DOTENV_SOURCE = f"dotenv: [file:./{DOTENV_FILE}]"


def file_source(file: ConfigFile) -> str:
    """The property source name of a file, Spring's for a config file."""
    if file.name == DOTENV_FILE:
        return DOTENV_SOURCE
    return f"applicationConfig: [file:./{file.name}]"


class PropertyValue(BaseModel):
    value: Any = Field(description="The value, '******' when masked.")
    origin: str = Field(
        description="Where it comes from: a variable, .env:line, file:line:column, "
        "Settings(...) argument or default."
    )


class PropertySource(BaseModel):
    name: str = Field(
        description="settings, systemEnvironment, dotenv: [file:./.env] or "
        "applicationConfig: [file:./application-<profile>.yaml] and [file:./application.yaml], "
        "in that order (the one that wins first)."
    )
    properties: dict[str, PropertyValue]


class Env(BaseModel):
    """``GET /env``: property sources, the effective settings first."""

    activeProfiles: list[str] = Field(
        description="REDIS_STREAMING_PROFILES (or load_settings(profiles=...)), in order."
    )
    defaultProfiles: list[str] = Field(description="Always ['default'].")
    propertySources: list[PropertySource]


class PropertySummary(BaseModel):
    source: str = Field(description="The first source (in /env order) that has the property.")
    value: Any


class SourceProperty(BaseModel):
    name: str
    property: PropertyValue


class EnvProperty(BaseModel):
    """``GET /env/{name}``: the winning value and every source that has the property."""

    property: PropertySummary
    activeProfiles: list[str]
    defaultProfiles: list[str]
    propertySources: list[SourceProperty]


class ConfigPropsBean(BaseModel):
    prefix: str = Field(description="redis_streaming.<section>")
    properties: dict[str, Any] = Field(description="The section's effective values, nested.")
    inputs: dict[str, Any] = Field(
        description="Per property {value, origin} when set by a variable, file or code, else {}."
    )


class ConfigPropsContext(BaseModel):
    beans: dict[str, ConfigPropsBean] = Field(description="Keyed <section>-<settings class>.")


class ConfigProps(BaseModel):
    """``GET /configprops``: every settings section, keyed by the application name."""

    contexts: dict[str, ConfigPropsContext]


def routes(ctx: ActuatorContext) -> APIRouter:
    """``/env...`` and ``/configprops...`` for the ids that ``ctx`` exposes."""
    router = ctx.router(sensitive=True)
    settings = ctx.app.settings
    if ctx.is_exposed("env"):

        @router.get("/env", summary="Settings, environment variables, .env and YAML files")
        async def env(request: Request) -> Env:
            return Env(
                activeProfiles=list(settings.active_profiles),
                defaultProfiles=["default"],
                propertySources=_sources(settings, ctx.show_values(request)),
            )

        @router.get(
            "/env/{name}",
            summary="One property, by variable name or dotted settings name",
            responses={404: {"description": "No source has the property."}},
        )
        async def env_property(
            request: Request,
            name: Annotated[
                str,
                Path(description="REDIS_STREAMING_... variable or e.g. mq.default_partitions."),
            ],
        ) -> EnvProperty:
            found = [
                SourceProperty(name=s.name, property=s.properties[key])
                for s in _sources(settings, ctx.show_values(request))
                for key in _keys(name)
                if key in s.properties
            ]
            if not found:
                raise HTTPException(
                    404,
                    f"no property {name!r}: give a REDIS_STREAMING_... variable or a dotted "
                    "settings name such as mq.default_partitions (GET /env lists them)",
                )
            return EnvProperty(
                property=PropertySummary(source=found[0].name, value=found[0].property.value),
                activeProfiles=list(settings.active_profiles),
                defaultProfiles=["default"],
                propertySources=found,
            )

    if ctx.is_exposed("configprops"):

        @router.get("/configprops", summary="Settings sections with their inputs")
        async def configprops(request: Request) -> ConfigProps:
            return _configprops(settings, _beans(settings, ctx.show_values(request)))

        @router.get(
            "/configprops/{prefix}",
            summary="Settings sections whose prefix starts with the given one",
            responses={404: {"description": "No section has that prefix."}},
        )
        async def configprops_prefix(
            request: Request,
            prefix: Annotated[str, Path(description="e.g. redis_streaming.mq (or just mq).")],
        ) -> ConfigProps:
            wanted = prefix if prefix.startswith("redis_streaming") else f"redis_streaming.{prefix}"
            beans = _beans(settings, ctx.show_values(request))
            matching = {k: b for k, b in beans.items() if b.prefix.startswith(wanted)}
            if not matching:
                known = ", ".join(sorted(b.prefix for b in beans.values()))
                raise HTTPException(404, f"no settings section with prefix {prefix!r}; {known}")
            return _configprops(settings, matching)

    return router


def _keys(name: str) -> list[str]:
    """An exact name first, then the variable spelled upper-case (variables ignore case)."""
    return list(dict.fromkeys([name, name.upper()]))


def _sources(settings: Settings, show: bool) -> list[PropertySource]:
    read = config_sources(settings)
    sources = [
        PropertySource(
            name=SETTINGS_SOURCE,
            properties={
                leaf.name: PropertyValue(value=sanitize(leaf.name, leaf.value, show), origin=o)
                for leaf in settings_leaves(settings)
                for o in [leaf.origin or "default"]
            },
        )
    ]
    if read.environment:
        sources.append(
            PropertySource(
                name=ENV_SOURCE,
                properties={
                    var: PropertyValue(value=sanitize(var, value, show), origin=env_origin(var))
                    for var, value in sorted(environment().items())
                },
            )
        )
    for file, values in file_properties(read):
        sources.append(
            PropertySource(
                name=file_source(file),
                properties={
                    key: PropertyValue(value=sanitize(key, value, show), origin=origin)
                    for key, (value, origin) in values.items()
                },
            )
        )
    return sources


def _beans(settings: Settings, show: bool) -> dict[str, ConfigPropsBean]:
    by_section: dict[str, list[Leaf]] = {}
    for leaf in settings_leaves(settings):
        by_section.setdefault(leaf.parts[0], []).append(leaf)
    beans = {}
    for section, leaves in by_section.items():
        cls = type(getattr(settings, section))
        properties: dict[str, Any] = {}
        inputs: dict[str, Any] = {}
        for leaf in leaves:
            value = sanitize(leaf.name, leaf.value, show)
            _put(properties, leaf.parts[1:], value)
            given = {"value": value, "origin": leaf.origin} if leaf.origin else {}
            _put(inputs, leaf.parts[1:], given)
        # named by where users import it: the starter's sections from the module of its
        # Settings (which exports them all), an application's own from theirs
        home = Settings.__module__ if cls.__module__.startswith(_STARTER) else cls.__module__
        beans[f"{section}-{home}.{cls.__qualname__}"] = ConfigPropsBean(
            prefix=f"redis_streaming.{section}", properties=properties, inputs=inputs
        )
    return beans


def _put(tree: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    for part in parts[:-1]:
        tree = tree.setdefault(part, {})
    tree[parts[-1]] = value


def _configprops(settings: Settings, beans: dict[str, ConfigPropsBean]) -> ConfigProps:
    return ConfigProps(contexts={settings.app.name: ConfigPropsContext(beans=beans)})


# -- values and where they come from ------------------------------------------------------------


def sanitize(name: str, value: Any, show: bool) -> Any:
    """``value`` as JSON, or ``******`` when values are hidden or ``name`` looks secret."""
    if not show or is_secret_name(name):
        return MASK
    return _strip_passwords(value)


def _strip_passwords(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {
            str(k): MASK if is_secret_name(str(k)) else _strip_passwords(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_strip_passwords(v) for v in value]
    return to_jsonable_python(value, fallback=_name_or_repr)


def _name_or_repr(value: Any) -> str:
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def environment() -> dict[str, str]:
    """The ``REDIS_STREAMING_*`` environment variables, and only those.

    The rest of a process environment is not this application's configuration, and it often
    carries credentials of other tools (cloud keys, CI tokens, database URLs) under names that
    no masking rule recognises reliably; Spring shows it all (masked by default), we do not
    show it at all. Names compare case-insensitively, as pydantic-settings reads them.
    """
    return {k: v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}


def env_origin(var: str) -> str:
    """Spring's origin text of an environment variable."""
    return f'System Environment Property "{var}"'


@dataclass(frozen=True)
class Leaf:
    """One effective settings value: ``mq.retry.max_attempts`` and where it was set."""

    parts: tuple[str, ...]
    value: Any
    origin: str | None  # None: the default

    @property
    def name(self) -> str:
        return ".".join(self.parts)


def settings_leaves(settings: Settings) -> list[Leaf]:
    """Every leaf field of ``settings`` with its origin: a variable, ``.env``, a YAML file,
    code (``Settings(...)`` arguments) or None for a default."""
    read = config_sources(settings)
    env = {k.upper(): k for k in environment()} if read.environment else {}
    dotenv: dict[str, str] = {}
    marks: dict[str, str] = {}
    for file, values in reversed(file_properties(read)):  # the winning file last: it overwrites
        if file.name == DOTENV_FILE:
            dotenv = {k.upper(): origin for k, (_, origin) in values.items()}
        else:
            marks.update({k: origin for k, (_, origin) in values.items()})
    out: list[Leaf] = []

    def origin(parts: tuple[str, ...]) -> str:
        for n in range(len(parts), 0, -1):  # the field's variable, or a section's as JSON
            var = ENV_PREFIX + "__".join(p.upper() for p in parts[:n])
            if var in env:
                return env_origin(env[var])
        for n in range(len(parts), 0, -1):
            var = ENV_PREFIX + "__".join(p.upper() for p in parts[:n])
            if var in dotenv:
                return dotenv[var]
        return marks.get(".".join(parts), "Settings(...) argument")

    def walk(model: BaseModel, prefix: tuple[str, ...], explicit: bool) -> None:
        for field in type(model).model_fields:
            parts = (*prefix, field)
            value = getattr(model, field)
            given = explicit and field in model.model_fields_set
            if isinstance(value, BaseModel):
                walk(value, parts, given)
            else:
                out.append(Leaf(parts, value, origin(parts) if given else None))

    walk(settings, (), True)
    return out


def file_properties(read: ConfigSources) -> list[tuple[ConfigFile, dict[str, tuple[Any, str]]]]:
    """Per file the settings were read from (the one that wins first): ``{name: (value,
    origin)}``, names as dotted settings (YAML) or variables (``.env``, only
    ``REDIS_STREAMING_*`` ones, as ``systemEnvironment``). The files are those found when the
    settings were loaded, read again on each request; one that cannot be read is left out."""
    out = []
    for file in read.files:
        if file.name == DOTENV_FILE:
            found = dotenv_variables(file)
            values = {
                k: (v, f"{DOTENV_FILE}:{line}")
                for k, (v, line) in sorted(found.items())
                if k.upper().startswith(ENV_PREFIX)
            }
            out.append((file, values))
        elif (from_yaml := yaml_properties(file)) is not None:
            out.append((file, from_yaml))
    return out
