"""Unknown setting names: a ``REDIS_STREAMING_*`` variable (of the environment or ``.env``), a
key of ``application.yaml`` or of a profile's ``application-<profile>.yaml``, or a
``Settings(...)`` argument that names no setting is an error, with the closest valid name.

pydantic-settings reads only the variables it knows and drops the rest, so without this check
``REDIS_STREAMING_REDIS_URL`` (one underscore) would be ignored and the application would start
an embedded server instead of connecting to the given one.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import BaseModel

from redis_streaming_starter.config_files import (
    DOTENV_FILE,
    PROFILES_VARIABLE,
    ConfigFile,
    dotenv_variables,
)

__all__ = ["unknown_names"]

# What a settings path leads to: a model (its fields are the names below it), ``OPEN`` (any
# name below it is valid: a map, ``Any``, a model with ``extra="allow"``) or ``LEAF``.
OPEN = "open"
LEAF = "leaf"
Node = type[BaseModel] | str
# Variables with the prefix that are read elsewhere, not settings: the server binary of the
# embedded server (redis_streaming.embedded.find_server_binary) and the active profiles
# (config_files.discover).
OTHER_VARIABLES = frozenset({"REDIS_STREAMING_SERVER_BINARY", PROFILES_VARIABLE})


def _node(annotation: Any) -> Node:
    """What a field of type ``annotation`` holds below it."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        nodes = [_node(a) for a in typing.get_args(annotation) if a is not type(None)]
        return next((n for n in nodes if n != LEAF), LEAF)
    if annotation is Any or typing.get_origin(annotation) in (dict, Mapping):
        return OPEN
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return OPEN if annotation.model_config.get("extra") == "allow" else annotation
    return LEAF


def _field(model: type[BaseModel], name: str, case_sensitive: bool) -> str | None:
    """The field of ``model`` that ``name`` names (variables ignore case), if any."""
    for field in model.model_fields:
        if field == name or (not case_sensitive and field.lower() == name.lower()):
            return field
    return None


def _paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterable[tuple[str, ...]]:
    """Every valid path: sections, nested models and leaves."""
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        yield path
        node = _node(info.annotation)
        if not isinstance(node, str):
            yield from _paths(node, path)


def _closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``name`` most likely misspells (difflib, ignoring case), if one is close."""
    options = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(name.lower(), list(options), n=1, cutoff=0.8)
    return options[match[0]] if match else None


class _Check:
    def __init__(self, settings_cls: type[BaseModel], foreign_sections: bool) -> None:
        self.cls = settings_cls
        self.foreign_sections = foreign_sections
        self.paths = list(_paths(settings_cls))
        self.sections = ", ".join(settings_cls.model_fields)
        self.problems: list[str] = []

    def walk(self, parts: list[str], case_sensitive: bool) -> int | None:
        """The index of the first part of ``parts`` that names nothing, or None when valid."""
        node: Node = self.cls
        for i, part in enumerate(parts):
            if node == OPEN:
                return None
            if isinstance(node, str):  # a leaf has nothing below it
                return i
            field = _field(node, part, case_sensitive)
            if field is None:
                return i
            node = _node(node.model_fields[field].annotation)
        return None

    def report(
        self, shown: str, parent: tuple[str, ...], missing: str, suggestion: str | None
    ) -> None:
        """Record that ``shown`` names no setting: ``parent`` has nothing named ``missing``."""
        if not parent and suggestion is None and self.foreign_sections:
            return  # a section of another Settings class (the application's own)
        if suggestion is not None:
            why = f"did you mean {suggestion}?"
        elif not parent and missing == "profiles":
            why = (
                f"profiles are chosen by the variable {PROFILES_VARIABLE}=prod,eu (or "
                "load_settings(profiles=...)), not in a file"
            )
        elif not parent:
            why = (
                f"{self.cls.__name__} has no section {missing!r} (its sections: {self.sections}); "
                "for a section of your own, subclass Settings and load it with "
                "load_settings(settings_cls=YourSettings)"
            )
        else:
            why = f"{'.'.join(parent)} has no setting {missing!r}"
        self.problems.append(f"{shown} is not a setting: {why}")

    def environment(
        self, environ: Mapping[str, Any], lines: Mapping[str, int] | None = None
    ) -> None:
        """Variables of ``environ``; with ``lines`` (of ``.env``), each shown with its line."""
        config = self.cls.model_config
        prefix = str(config.get("env_prefix") or "")
        delimiter = str(config.get("env_nested_delimiter") or "")
        case_sensitive = bool(config.get("case_sensitive"))
        if not prefix:
            return  # every variable of the process would be a candidate: nothing to check
        fold = (lambda text: text) if case_sensitive else str.upper
        for var in sorted(environ):
            if not fold(var).startswith(fold(prefix)) or var.upper() in OTHER_VARIABLES:
                continue
            rest = var[len(prefix) :]
            parts = rest.split(delimiter) if delimiter else [rest]
            bad = self.walk(parts, case_sensitive)
            if bad is None:
                continue
            join = delimiter or "_"
            closest = _closest(rest, [join.join(p.upper() for p in path) for path in self.paths])
            parent = tuple(p.lower() for p in parts[:bad])
            shown = var if lines is None else f"{DOTENV_FILE}:{lines.get(var, 0)}: {var}"
            self.report(shown, parent, parts[bad].lower(), closest and prefix.upper() + closest)

    def mapping(self, data: Any, where: str, marks: Any = None) -> None:
        """Keys of ``data`` (application.yaml, arguments), nested sections included."""
        dotted = [".".join(p) for p in self.paths]

        def visit(value: Any, node: Node, path: tuple[str, ...], mark_node: Any) -> None:
            if isinstance(node, str) or not isinstance(value, Mapping):
                return
            marked = _marks(mark_node)
            for key, item in value.items():
                if not isinstance(key, str):
                    continue
                field = _field(node, key, case_sensitive=True)
                name = ".".join((*path, key))
                if field is None:
                    line = marked.get(key)
                    shown = f"{where}:{line}: {name!r}" if line else f"{where}: {name!r}"
                    hint = _closest(name, dotted)
                    self.report(shown, path, key, repr(hint) if hint else None)
                    continue
                child = _marked_child(mark_node, key)
                visit(item, _node(node.model_fields[field].annotation), (*path, key), child)

        visit(data, self.cls, (), marks)


def _marks(node: Any) -> dict[str, str]:
    """``{key: "line:column"}`` of a YAML mapping node's keys."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {
        str(k.value): f"{k.start_mark.line + 1}:{k.start_mark.column + 1}" for k, _ in node.value
    }


def _marked_child(node: Any, key: str) -> Any:
    """The YAML node of ``key`` in a mapping node, if any."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return v
    return None


def unknown_names(
    settings_cls: type[BaseModel],
    *,
    arguments: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    files: Iterable[ConfigFile] = (),
    environ: Mapping[str, str],
    foreign_sections: bool = False,
) -> list[str]:
    """One line per name that is no setting of ``settings_cls``: its variables (by its
    ``env_prefix``) in ``environ`` and in a ``.env`` among ``files``, the keys of the YAML
    ``files`` (``application.yaml``, ``application-<profile>.yaml``), ``arguments`` and
    ``defaults``; each with the closest valid name when one is close.

    With ``foreign_sections``, a top-level name that resembles no section is accepted: it may
    belong to another ``Settings`` class (the CLI does not know the application's own).
    """
    check = _Check(settings_cls, foreign_sections)
    check.environment(environ)
    for file in files:
        if file.name == DOTENV_FILE:
            found = dotenv_variables(file)
            check.environment(
                {k: v for k, (v, _) in found.items()}, {k: n for k, (_, n) in found.items()}
            )
            continue
        try:
            text = file.path.read_text(encoding="utf-8")
            check.mapping(yaml.safe_load(text), file.name, yaml.compose(text, yaml.SafeLoader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            pass  # reading the file for the settings reports it
    given = {k: v for k, v in (arguments or {}).items() if not k.startswith("_")}
    check.mapping(given, f"{settings_cls.__name__}(...) argument")
    check.mapping(defaults or {}, "load_settings(defaults=...)")
    return check.problems
