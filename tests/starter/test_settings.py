from __future__ import annotations

import json
from pathlib import Path

import pytest

from redis_streaming import ConfigurationError, MQOptions
from redis_streaming_starter import Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("REDIS_STREAMING_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_env_vars_reach_every_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_STREAMING_APP__NAME", "shop")
    monkeypatch.setenv("REDIS_STREAMING_REDIS__URL", "redis://db:6379/1")
    monkeypatch.setenv("REDIS_STREAMING_MQ__DEFAULT_PARTITIONS", "12")
    monkeypatch.setenv("REDIS_STREAMING_MQ__RETRY__MAX_ATTEMPTS", "7")
    monkeypatch.setenv("REDIS_STREAMING_MQ__LISTENER_PACKAGES", "shop.billing, shop.shipping")
    monkeypatch.setenv("REDIS_STREAMING_ACTUATOR__EXPOSE", "health,info,prometheus")
    monkeypatch.setenv("REDIS_STREAMING_LOGGING__LEVEL", "debug")
    s = load_settings()
    assert s.app.name == "shop"
    assert s.redis.url == "redis://db:6379/1"
    assert isinstance(s.mq, MQOptions)  # the framework's options, unchanged
    assert s.mq.default_partitions == 12
    assert s.mq.retry.max_attempts == 7
    assert s.mq.listener_packages == ["shop.billing", "shop.shipping"]
    assert s.actuator.expose == ["health", "info", "prometheus"]
    assert s.logging.level == "DEBUG"


def test_yaml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("application.yaml").write_text(
        "app:\n  name: from-yaml\nmq:\n  default_partitions: 4\n  batch_size: 50\n"
    )
    monkeypatch.setenv("REDIS_STREAMING_MQ__DEFAULT_PARTITIONS", "6")
    s = load_settings()
    assert s.app.name == "from-yaml"
    assert s.mq.batch_size == 50
    assert s.mq.default_partitions == 6


@pytest.mark.parametrize(
    "value",
    ["builtins.KeyError, json.JSONDecodeError", '["builtins.KeyError", "json.JSONDecodeError"]'],
)
def test_lists_in_env_vars_are_comma_separated_or_json(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("REDIS_STREAMING_MQ__RETRY__NON_RETRYABLE", value)
    monkeypatch.setenv("REDIS_STREAMING_MQ__LISTENER_PACKAGES", value)
    s = load_settings()
    assert s.mq.retry.non_retryable == (KeyError, json.JSONDecodeError)
    assert s.mq.listener_packages == ["builtins.KeyError", "json.JSONDecodeError"]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("REDIS_STREAMING_MQ__DEFAULT_PARTITIONS", "abc", "valid integer"),
        ("REDIS_STREAMING_MQ__LEASE_TTL_S", "1", "rebalance_interval_s"),
        ("REDIS_STREAMING_APP__NAME", "my app", "invalid app name"),
        ("REDIS_STREAMING_ACTUATOR__BASE_PATH", "actuator", "must start with '/'"),
        ("REDIS_STREAMING_LOGGING__LEVEL", "LOUD", "DEBUG"),
        ("REDIS_STREAMING_MQ__RETRY__NON_RETRYABLE", "builtins.Nope", "cannot be imported"),
        ("REDIS_STREAMING_MQ__LISTENER_PACKAGES", "[shop", "separated by commas"),
    ],
)
def test_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert f"{name}={value!r}" in str(info.value) or name in str(info.value)
    assert says in str(info.value)


def test_every_field_has_a_description() -> None:
    def walk(model: type, path: str) -> None:
        for field_name, field in model.model_fields.items():  # type: ignore[attr-defined]
            assert field.description, f"{path}{field_name} has no description"
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation, f"{path}{field_name}.")

    walk(Settings, "")


def test_defaults_in_code_lose_to_the_environment_and_yaml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Path("application.yaml").write_text("mq:\n  batch_size: 50\n")
    monkeypatch.setenv("REDIS_STREAMING_APP__NAME", "from-env")
    defaults = {
        "app": {"name": "from-code", "version": "1.2.3"},
        "mq": {"batch_size": 10, "default_partitions": 6},
    }
    s = load_settings(defaults=defaults)
    assert (s.app.name, s.app.version) == ("from-env", "1.2.3")  # sections merge per field
    assert (s.mq.batch_size, s.mq.default_partitions) == (50, 6)
    # Overrides still win over everything; a plain Settings() knows no code defaults.
    assert load_settings(defaults=defaults, app={"name": "forced"}).app.name == "forced"
    assert Settings().app.version != "1.2.3"
    with pytest.raises(ConfigurationError, match="DEFAULT_PARTITIONS"):
        load_settings(defaults={"mq": {"default_partitions": 0}})  # checked like the rest
