"""Where settings come from outside the code, in the working directory: the environment, a
``.env`` file, the active profiles' ``application-<profile>.yaml`` and ``application.yaml``.

:func:`discover` decides once, when settings are loaded, which of these a ``Settings`` object
is read from (a :class:`ConfigSources`); the settings sources, the unknown-name check and
``/actuator/env`` all follow that record, so they cannot disagree about the files.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from dotenv.parser import parse_stream

from redis_streaming import ConfigurationError

__all__ = [
    "DOTENV_FILE",
    "PROFILES_VARIABLE",
    "YAML_FILE",
    "ConfigFile",
    "ConfigSources",
    "discover",
    "dotenv_variables",
    "set_in_file",
    "yaml_properties",
]

YAML_FILE = "application.yaml"
DOTENV_FILE = ".env"
PROFILES_VARIABLE = "REDIS_STREAMING_PROFILES"
# A profile name is part of a file name: no separators, no leading dot.
_PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class ConfigFile:
    """A file settings are read from: ``name`` as shown (``application-prod.yaml``), ``path``
    absolute (the working directory when the settings were loaded), and its ``profile``."""

    name: str
    path: Path
    profile: str | None = None


@dataclass(frozen=True)
class ConfigSources:
    """What one ``Settings`` object was read from, besides code.

    ``environment``: the process environment (False for ``load_settings(isolated=True)``);
    ``dotenv``: the ``.env`` file, when there was one; ``yaml_files``: the YAML files that
    exist, the one that wins first (``application-eu.yaml``, ``application-prod.yaml``,
    ``application.yaml`` for profiles ``prod,eu``); ``profiles``: the active profiles in the
    order given; ``missing``: those of them without a file.
    """

    environment: bool
    profiles: tuple[str, ...] = ()
    yaml_files: tuple[ConfigFile, ...] = ()
    dotenv: ConfigFile | None = None
    missing: tuple[str, ...] = ()

    def described(self) -> list[str]:
        """What the start logs (INFO) about the profiles: those active, and those whose file
        is missing."""
        lines = [f"profiles active: {', '.join(self.profiles)}"] if self.profiles else []
        lines += [
            f"profile {p}: no application-{p}.yaml, nothing read for it" for p in self.missing
        ]
        return lines

    @property
    def files(self) -> tuple[ConfigFile, ...]:
        """Every file read, the one that wins first: ``.env``, then the YAML files."""
        return ((self.dotenv,) if self.dotenv else ()) + self.yaml_files


ISOLATED = ConfigSources(environment=False)


def discover(profiles: Sequence[str] | str | None, *, isolated: bool) -> ConfigSources:
    """The sources of settings loaded now, in the working directory.

    ``profiles`` given (``load_settings(profiles=...)``) wins; else ``REDIS_STREAMING_PROFILES``
    from the environment, else from ``.env``. A profile whose file is missing is active all
    the same (listed in ``missing``, as Spring Boot ignores a missing profile file). A name
    that cannot be part of a file name raises ``ConfigurationError``.
    """
    if isolated:
        if profiles:
            raise ConfigurationError(
                f"load_settings(isolated=True, profiles={profiles!r}): an isolated load reads no "
                "file, so the profiles would load nothing; pass their values as arguments, or "
                "drop isolated=True"
            )
        return ISOLATED
    directory = Path.cwd()
    dotenv_path = directory / DOTENV_FILE
    dotenv = ConfigFile(DOTENV_FILE, dotenv_path) if dotenv_path.is_file() else None
    if profiles is not None:
        active = _profiles(profiles, "load_settings(profiles=...)")
    else:
        given = _from_environment(os.environ)
        where = PROFILES_VARIABLE
        if given is None and dotenv is not None:
            given = _from_environment(dotenv_values(dotenv.path))
            where = f"{PROFILES_VARIABLE} in {DOTENV_FILE}"
        active = _profiles(given or "", where)
    found: list[ConfigFile] = []
    missing: list[str] = []
    for profile in reversed(active):  # the last profile given wins
        name = f"application-{profile}.yaml"
        if (directory / name).is_file():
            found.append(ConfigFile(name, directory / name, profile))
        else:
            missing.append(profile)
    if (directory / YAML_FILE).is_file():
        found.append(ConfigFile(YAML_FILE, directory / YAML_FILE))
    return ConfigSources(
        environment=True,
        profiles=active,
        yaml_files=tuple(found),
        dotenv=dotenv,
        missing=tuple(p for p in active if p in missing),
    )


def _from_environment(environ: Mapping[str, str | None]) -> str | None:
    """``REDIS_STREAMING_PROFILES`` of ``environ`` (names ignore case, as settings do)."""
    for name, value in environ.items():
        if name.upper() == PROFILES_VARIABLE:
            return value or ""
    return None


def _profiles(given: Sequence[str] | str, where: str) -> tuple[str, ...]:
    """Profile names, comma-separated or a list; blanks dropped, repeats kept once."""
    items = given.split(",") if isinstance(given, str) else list(given)
    names: list[str] = []
    for item in items:
        name = str(item).strip()
        if not name or name in names:
            continue
        if not _PROFILE.fullmatch(name):
            raise ConfigurationError(
                f"invalid settings: {where}: {name!r} is not a profile name: use letters, "
                "digits, '.', '_' and '-' (it names the file application-<profile>.yaml), "
                f"several separated by commas, e.g. {PROFILES_VARIABLE}=prod,eu"
            )
        names.append(name)
    return tuple(names)


def set_in_file(read: ConfigSources, parts: tuple[str, ...], prefix: str) -> str | None:
    """Where the first file of ``read`` that sets the field ``parts`` does it:
    ``.env:3: REDIS_STREAMING_MQ__BATCH_SIZE`` or ``application-prod.yaml:2:15: mq.batch_size``;
    None when no file sets it."""
    variable = prefix + "__".join(p.upper() for p in parts)
    dotted = ".".join(parts)
    for file in read.files:
        if file.name == DOTENV_FILE:
            lines = {k.upper(): line for k, (_, line) in dotenv_variables(file).items()}
            if variable in lines:
                return f"{DOTENV_FILE}:{lines[variable]}: {variable}"
        elif dotted in (found := yaml_properties(file) or {}):
            return f"{found[dotted][1]}: {dotted}"
    return None


def dotenv_variables(file: ConfigFile) -> dict[str, tuple[str | None, int]]:
    """``{variable: (value, line)}`` of a ``.env`` file (values interpolated as
    pydantic-settings reads them); empty when it cannot be read."""
    try:
        text = file.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    lines = {b.key: b.original.line for b in parse_stream(io.StringIO(text)) if b.key}
    values = dotenv_values(stream=io.StringIO(text))
    return {name: (value, lines.get(name, 0)) for name, value in values.items()}


def yaml_properties(file: ConfigFile) -> dict[str, tuple[Any, str]] | None:
    """``{dotted name: (value, "application.yaml:line:column")}``; None when unreadable."""
    try:
        text = file.path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    marks: dict[str, str] = {}
    _marks(root, "", file.name, marks)
    values: dict[str, Any] = {}
    _flatten(data, "", values)
    return {k: (v, marks.get(k, file.name)) for k, v in values.items()}


def _marks(node: Any, prefix: str, shown: str, out: dict[str, str]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = f"{prefix}{key.value}"
            if isinstance(value, yaml.MappingNode):
                _marks(value, name + ".", shown, out)
            else:
                mark = value.start_mark
                out[name] = f"{shown}:{mark.line + 1}:{mark.column + 1}"


def _flatten(data: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, dict) and value:
                _flatten(value, f"{prefix}{key}.", out)
            else:
                out[f"{prefix}{key}"] = value
