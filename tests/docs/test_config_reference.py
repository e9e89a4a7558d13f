"""docs/configuration.md is generated from ``Settings`` and lists every field."""

from __future__ import annotations

import importlib.util
import typing
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from redis_streaming_starter.settings import Settings
from tests.docs.snippets import DOCS, ROOT

PAGE = DOCS / "configuration.md"


def _generator() -> ModuleType:
    path = ROOT / "tools" / "gen_config_reference.py"
    spec = importlib.util.spec_from_file_location("gen_config_reference", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fields(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf field, walked independently of the generator."""
    out: list[tuple[str, ...]] = []
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        # An optional section (redis.sentinel: SentinelSettings | None) is walked as a section.
        optional = [a for a in typing.get_args(annotation) if a is not type(None)]
        if type(None) in typing.get_args(annotation) and len(optional) == 1:
            annotation = optional[0]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += _fields(annotation, (*path, name))
        else:
            out.append((*path, name))
    return out


def test_the_page_is_up_to_date() -> None:
    assert PAGE.read_text() == _generator().render(), (
        "docs/configuration.md is stale: run .venv/bin/python tools/gen_config_reference.py"
    )


def test_every_settings_field_is_documented_with_its_variable() -> None:
    text = PAGE.read_text()
    fields = _fields(Settings)
    assert len(fields) > 60
    for path in fields:
        variable = "REDIS_STREAMING_" + "__".join(p.upper() for p in path)
        row = f"| `{'.'.join(path)}`<br>`{variable}` |"
        assert row in text, f"{'.'.join(path)} ({variable}) is missing from {PAGE.name}"


def test_every_documented_variable_configures_its_field(monkeypatch: Any) -> None:
    """The variable names on the page are the ones pydantic-settings reads."""
    monkeypatch.setenv("REDIS_STREAMING_MQ__RETRY__MAX_ATTEMPTS", "3")
    monkeypatch.setenv("REDIS_STREAMING_ACTUATOR__EXPOSE", "health,topics")
    monkeypatch.setenv("REDIS_STREAMING_REGISTRY__METADATA", "region=eu,zone=a")
    settings = Settings()
    assert settings.mq.retry.max_attempts == 3
    assert settings.actuator.expose == ["health", "topics"]
    assert settings.registry.metadata == {"region": "eu", "zone": "a"}
