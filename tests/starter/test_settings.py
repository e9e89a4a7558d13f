from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, model_validator

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
    assert f"{name}={value!r}" in str(info.value)  # the variable, its value and the rule
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


# -- unknown names (a typo never goes unnoticed) -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("REDIS_STREAMING_REDIS_URL", "REDIS_STREAMING_REDIS__URL"),  # one underscore
        ("REDIS_STREAMING_ACTUATER__EXPOSE", "REDIS_STREAMING_ACTUATOR__EXPOSE"),
        ("REDIS_STREAMING_MQ_DEFAULT_PARTITIONS", "REDIS_STREAMING_MQ__DEFAULT_PARTITIONS"),
        ("REDIS_STREAMING_MQ__RETRY__MAX_ATEMPTS", "REDIS_STREAMING_MQ__RETRY__MAX_ATTEMPTS"),
        ("redis_streaming_app__nmae", "REDIS_STREAMING_APP__NAME"),  # names ignore case
    ],
)
def test_an_unknown_variable_is_an_error_naming_the_closest_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, closest: str
) -> None:
    monkeypatch.setenv(name, "redis://db:6379/0")
    for build in (load_settings, Settings):  # every way of building the settings
        with pytest.raises(ConfigurationError) as info:
            build()
        message = str(info.value)
        assert "\n" not in message  # one problem, one line
        assert f"{name} is not a setting: did you mean {closest}?" in message
        assert "redis://db" not in message  # the value of an unknown name is never shown


def test_an_unknown_section_without_a_close_name_says_how_to_add_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_STREAMING_SHOP__FREE_SHIPPING_OVER", "99")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert "REDIS_STREAMING_SHOP__FREE_SHIPPING_OVER is not a setting" in message
    assert "has no section 'shop'" in message
    assert "load_settings(settings_cls=" in message


def test_unknown_keys_of_application_yaml_are_errors_with_their_line() -> None:
    Path("application.yaml").write_text(
        "app:\n  name: shop\nactuater:\n  expose: '*'\nmq:\n  batchsize: 5\n"
    )
    with pytest.raises(ConfigurationError) as info:
        Settings()
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid settings:"
    assert "application.yaml:3:1: 'actuater' is not a setting: did you mean 'actuator'?" in lines[1]
    assert "application.yaml:6:3: 'mq.batchsize' is not a setting: did you mean " in lines[2]
    assert "'mq.batch_size'?" in lines[2]


def test_unknown_arguments_and_defaults_are_errors() -> None:
    with pytest.raises(ConfigurationError, match="'actuater' is not a setting: did you mean"):
        Settings(actuater={"expose": ["*"]})
    with pytest.raises(ConfigurationError, match=r"defaults=\.\.\.\): 'app\.nmae' is not a"):
        load_settings(defaults={"app": {"nmae": "shop"}})


def test_variables_of_the_embedded_server_are_not_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # REDIS_STREAMING_SERVER_BINARY picks the binary of the embedded server, it is no setting
    monkeypatch.setenv("REDIS_STREAMING_SERVER_BINARY", "/usr/bin/redis-server")
    assert load_settings().redis.url is None


def test_foreign_sections_accepts_other_sections_but_not_near_misses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the CLI uses: it does not know the application's own sections."""
    monkeypatch.setenv("REDIS_STREAMING_SHOP__FREE_SHIPPING_OVER", "99")
    Path("application.yaml").write_text("shop:\n  free_shipping_over: 50\n")
    assert load_settings(foreign_sections=True).app.name == "redis-streaming-app"
    monkeypatch.setenv("REDIS_STREAMING_REDIS_URL", "redis://db:6379/0")
    with pytest.raises(ConfigurationError, match="did you mean REDIS_STREAMING_REDIS__URL"):
        load_settings(foreign_sections=True)
    monkeypatch.delenv("REDIS_STREAMING_REDIS_URL")
    monkeypatch.setenv("REDIS_STREAMING_MQ__BATCHSIZE", "5")  # a known section: no leniency
    with pytest.raises(ConfigurationError, match="MQ__BATCHSIZE is not a setting"):
        load_settings(foreign_sections=True)


# -- the application's own settings (a Settings subclass) --------------------------------------


class Shop(BaseModel):
    model_config = ConfigDict(extra="forbid")

    free_shipping_over: float = Field(50.0, ge=0)
    api_key: SecretStr = Field(SecretStr("unset-but-long-enough"), min_length=12)
    backend_url: AnyHttpUrl = Field(AnyHttpUrl("http://backend"))
    discount: float = 0.0
    max_discount: float = 0.5

    @model_validator(mode="after")
    def _discount(self) -> Shop:
        if self.discount > self.max_discount:
            raise ValueError("discount must be at most max_discount")
        return self


class ShopSettings(Settings):
    shop: Shop = Field(default_factory=Shop)


def test_an_application_section_reads_yaml_and_env_and_env_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Path("application.yaml").write_text("shop:\n  free_shipping_over: 80\n  discount: 0.1\n")
    monkeypatch.setenv("REDIS_STREAMING_SHOP__FREE_SHIPPING_OVER", "99")
    s = load_settings(settings_cls=ShopSettings)
    assert isinstance(s, ShopSettings)
    assert (s.shop.free_shipping_over, s.shop.discount) == (99.0, 0.1)
    assert ShopSettings().shop.free_shipping_over == 99.0
    monkeypatch.setenv("REDIS_STREAMING_SHOP__FREE_SHIPING_OVER", "1")  # a typo in its section
    with pytest.raises(ConfigurationError) as info:
        load_settings(settings_cls=ShopSettings)
    assert "did you mean REDIS_STREAMING_SHOP__FREE_SHIPPING_OVER?" in str(info.value)


def test_an_application_section_error_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_STREAMING_SHOP__FREE_SHIPPING_OVER", "lots")
    for build in (lambda: load_settings(settings_cls=ShopSettings), ShopSettings):
        with pytest.raises(ConfigurationError) as info:
            build()
        assert "REDIS_STREAMING_SHOP__FREE_SHIPPING_OVER='lots': Input should be a valid" in str(
            info.value
        )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("REDIS_STREAMING_REDIS__PASSWORD", "hunter2", "is not a setting"),  # F6
        (
            "REDIS_STREAMING_ACTUATOR__TOKN",
            "hunter2",
            "did you mean REDIS_STREAMING_ACTUATOR__TOKEN",
        ),
        ("REDIS_STREAMING_SHOP__API_KEY", "hunter2", "at least 12 items"),
        ("REDIS_STREAMING_SHOP__BACKEND_URL", "postgres://shop:hunter2@db/shop", "URL scheme"),
        ("REDIS_STREAMING_SHOP__BACKEND_URL", "ftp://db/x?password=hunter2", "URL scheme"),
    ],
)
def test_a_secret_value_is_never_printed(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings(settings_cls=ShopSettings)
    message = str(info.value)
    assert name in message
    assert says in message
    assert "hunter2" not in message
    if "is not a setting" not in message:  # a bad value: named, and shown masked
        assert f"{name}=******" in message


def test_a_rule_over_several_fields_names_the_variables_and_masks_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_STREAMING_SHOP__DISCOUNT", "0.9")
    monkeypatch.setenv("REDIS_STREAMING_SHOP__API_KEY", "hunter2-but-long")
    with pytest.raises(ConfigurationError) as info:
        load_settings(settings_cls=ShopSettings)
    message = str(info.value)
    assert "REDIS_STREAMING_SHOP__API_KEY=******" in message
    assert "REDIS_STREAMING_SHOP__DISCOUNT='0.9'" in message
    assert "discount must be at most max_discount" in message
    assert "hunter2" not in message
