"""Core actuator endpoints (discovery, health, info, env, configprops, beans, loggers,
threaddump) through httpx against the real application, its lifespan and a real Redis server."""

from __future__ import annotations

import asyncio
import logging
import platform
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import redis_streaming
from redis_streaming import Consumer, Producer
from redis_streaming.testing import RedisServer
from redis_streaming_starter import RedisStreamingApplication, Settings, load_settings
from redis_streaming_starter.actuator.health import DOWN, Health
from redis_streaming_starter.settings import ActuatorSettings
from tests.helpers import serving, wait_until
from tests.starter.apps.orders.services import AppContainer

TOKEN = "core-s3cret-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": "Bearer nope"}
MASK = "******"
MY_IDS = {"beans", "configprops", "env", "health", "info", "loggers", "threaddump"}


def _with(settings: Settings, **actuator: Any) -> Settings:
    return settings.model_copy(update={"actuator": ActuatorSettings.model_validate(actuator)})


@asynccontextmanager
async def actuator(
    settings: Settings, *, started: bool = False, container: Any = None, **actuator: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a fresh application whose ``actuator`` section is ``actuator``."""
    app = RedisStreamingApplication(settings=_with(settings, **actuator), container=container)
    async with serving(app.asgi, started=started) as http:
        yield http


def _ids(links: dict[str, Any]) -> set[str]:
    return {key.split("-")[0] for key in links} - {"self"}


# -- discovery and exposure ---------------------------------------------------------------------


async def test_discovery_lists_the_default_exposure_and_nothing_else(settings: Settings) -> None:
    async with actuator(settings) as http:
        links = (await http.get("/actuator")).json()["_links"]
        assert links == {
            "self": {"href": "/actuator", "templated": False},
            "health": {"href": "/actuator/health", "templated": False},
            "health-path": {"href": "/actuator/health/{*path}", "templated": True},
            "info": {"href": "/actuator/info", "templated": False},
        }
        for path in ("/env", "/env/x", "/configprops", "/beans", "/loggers", "/threaddump"):
            assert (await http.get(f"/actuator{path}")).status_code == 404, path
        change = await http.post("/actuator/loggers/x", json={"configuredLevel": None})
        assert change.status_code == 404


async def test_star_exposes_everything_and_exclude_wins(settings: Settings) -> None:
    async with actuator(settings, expose=["*"], exclude=["env", "threaddump"]) as http:
        links = (await http.get("/actuator")).json()["_links"]
        assert MY_IDS - {"env", "threaddump"} <= _ids(links)
        assert not {"env", "threaddump"} & _ids(links)
        assert links["loggers-name"] == {
            "href": "/actuator/loggers/{name}",
            "templated": True,
        }
        assert links["configprops-prefix"]["templated"] is True
        assert (await http.get("/actuator/env")).status_code == 404
        assert (await http.get("/actuator/threaddump")).status_code == 404
        assert (await http.get("/actuator/beans")).status_code == 200


async def test_links_follow_the_base_path(settings: Settings) -> None:
    async with actuator(settings, base_path="/manage", expose=["beans"]) as http:
        links = (await http.get("/manage")).json()["_links"]
        assert links == {
            "self": {"href": "/manage", "templated": False},
            "beans": {"href": "/manage/beans", "templated": False},
        }
        assert (await http.get("/actuator")).status_code == 404


# -- health ---------------------------------------------------------------------------------------


async def test_health_components_groups_and_probes(settings: Settings) -> None:
    async with actuator(settings, started=True, show_details="always") as http:
        health = (await http.get("/actuator/health")).json()
        assert health["status"] == "UP"
        assert health["groups"] == ["liveness", "readiness"]
        assert set(health["components"]) >= {"redis", "mq"}
        redis = health["components"]["redis"]
        assert redis["status"] == "UP"
        assert redis["details"]["version"]
        assert (await http.get("/actuator/health/redis")).json() == redis
        assert (await http.get("/actuator/health/liveness")).json() == {"status": "UP"}
        assert (await http.get("/actuator/health/readiness")).json() == {"status": "UP"}
        missing = await http.get("/actuator/health/nope")
        assert missing.status_code == 404
        assert "components: " in missing.json()["detail"]
        assert "liveness" in missing.json()["detail"]
        assert (await http.get("/actuator/health/redis/child")).status_code == 404


async def test_readiness_is_down_until_started(settings: Settings) -> None:
    async with actuator(settings) as http:
        response = await http.get("/actuator/health/readiness")
        assert (response.status_code, response.json()) == (503, {"status": "DOWN"})
        assert (await http.get("/actuator/health/liveness")).status_code == 200
        assert (await http.get("/actuator/health/mq")).json()["status"] == "OUT_OF_SERVICE"


async def test_redis_outage_turns_health_down_and_back_up(
    settings: Settings, rs_server: RedisServer
) -> None:
    redis = settings.redis.model_copy(update={"url": rs_server.url})
    with_server = settings.model_copy(update={"redis": redis})
    async with actuator(with_server, started=True, show_details="always") as http:
        assert (await http.get("/actuator/health")).status_code == 200
        await asyncio.to_thread(rs_server.stop)

        async def status(path: str) -> int:
            return (await http.get(f"/actuator/health{path}")).status_code

        async def health_down() -> bool:
            return await status("") == 503

        await wait_until(health_down, 5, "health DOWN after Redis stopped")
        redis = (await http.get("/actuator/health/redis")).json()
        assert redis["status"] == DOWN
        assert redis["details"]["error"]
        assert await status("/readiness") == 503
        assert await status("/liveness") == 200  # liveness never depends on Redis
        info = await http.get("/actuator/info")
        assert info.status_code == 200
        assert "error" in info.json()["redis"]

        await asyncio.to_thread(rs_server.start)

        async def health_up() -> bool:
            return await status("") == 200

        await wait_until(health_up, 15, "health UP after Redis restarted")
        assert await status("/readiness") == 200


async def test_a_hung_check_is_down_within_the_time_limit(settings: Settings) -> None:
    app = RedisStreamingApplication(settings=_with(settings, show_details="always"))
    app.health.timeout_s = 0.2

    async def hung() -> Health:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    app.health.register("hung", hung)
    async with serving(app.asgi, started=False) as http:
        loop = asyncio.get_running_loop()
        start = loop.time()
        response = await http.get("/actuator/health/hung")
        assert loop.time() - start < 2
        assert response.status_code == 503
        assert response.json()["details"] == {"error": "health check timed out after 0.2s"}


async def test_composite_components_nest(settings: Settings) -> None:
    app = RedisStreamingApplication(settings=_with(settings, show_details="always"))

    async def composite() -> Health:
        children = {"a": Health("UP"), "b": Health(DOWN, {"why": "broken"})}
        return Health(DOWN, components=children)

    app.health.register("composite", composite)
    async with serving(app.asgi, started=False) as http:
        node = (await http.get("/actuator/health/composite")).json()
        child = await http.get("/actuator/health/composite/b")
        missing = await http.get("/actuator/health/composite/c")
    assert node == {
        "status": "DOWN",
        "components": {
            "a": {"status": "UP"},
            "b": {"status": "DOWN", "details": {"why": "broken"}},
        },
    }
    assert (child.status_code, child.json()) == (503, node["components"]["b"])
    assert missing.status_code == 404
    assert "(a, b)" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("rule", "headers", "shown"),
    [
        ("never", AUTH, False),
        ("always", {}, True),
        ("when_authorized", {}, False),
        ("when_authorized", WRONG, False),
        ("when_authorized", AUTH, True),
    ],
)
async def test_show_details(
    settings: Settings, rule: str, headers: dict[str, str], shown: bool
) -> None:
    async with actuator(settings, started=True, show_details=rule, token=TOKEN) as http:
        health = (await http.get("/actuator/health", headers=headers)).json()
        assert ("components" in health) is shown
        assert health["groups"] == ["liveness", "readiness"]
        redis = (await http.get("/actuator/health/redis", headers=headers)).json()
        assert ("details" in redis) is shown


# -- info -----------------------------------------------------------------------------------------


async def test_info(settings: Settings) -> None:
    app = RedisStreamingApplication(settings=settings)
    async with serving(app.asgi, started=False) as http:
        before = (await http.get("/actuator/info")).json()
        assert before["redis"] == {"error": "not connected: the application is not running"}
    async with serving(app.asgi, started=True) as http:
        info = (await http.get("/actuator/info")).json()
    consumer: Consumer | None = app.consumer
    assert consumer is not None
    assert info["app"] == {
        "name": "testapp",
        "version": "0.0.0",
        "instanceId": consumer.consumer_id,
    }
    assert info["framework"] == {"name": "redis-streaming", "version": redis_streaming.__version__}
    assert info["python"] == {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
    }
    assert info["redis"]["version"].count(".") == 2
    assert info["redis"]["mode"] == "standalone"


# -- env and configprops -------------------------------------------------------------------------


class Vault(BaseModel):
    """An application's own section whose field names look secret (and one that does not)."""

    password: str = ""
    client_secret: str = ""
    credentials: str = ""
    db_password: str = ""
    oauth_client_secret: str = ""
    signing_key: str = ""
    cloud_credentials: str = ""
    region: str = ""


class VaultSettings(Settings):
    vault: Vault = Vault()


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rs_namespace: str) -> Settings:
    """Settings loaded as in production: variables, an application.yaml, defaults, and an
    application's own section."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "application.yaml").write_text(
        "mq:\n  batch_size: 7\napp:\n  name: envapp\n"
        "vault:\n  password: pw-value\n  client_secret: secret-value\n  credentials: c-value\n"
    )
    env = {
        "REDIS_STREAMING_MQ__NAMESPACE": rs_namespace,
        "REDIS_STREAMING_MQ__DEFAULT_PARTITIONS": "12",
        "REDIS_STREAMING_APP__VERSION": "1.2.3",
        "REDIS_STREAMING_REDIS__URL": "redis://:hunter2@127.0.0.1:1/0",
        "REDIS_STREAMING_ACTUATOR__TOKEN": TOKEN,
        "REDIS_STREAMING_ACTUATOR__EXPOSE": "env,configprops",
        "AWS_SECRET_ACCESS_KEY": "not-ours",
        # the application's own settings, masked by their names
        "REDIS_STREAMING_VAULT__DB_PASSWORD": "pw-value",
        "REDIS_STREAMING_VAULT__OAUTH_CLIENT_SECRET": "secret-value",
        "REDIS_STREAMING_VAULT__SIGNING_KEY": "key-value",
        "REDIS_STREAMING_VAULT__CLOUD_CREDENTIALS": "credential-value",
        "REDIS_STREAMING_VAULT__REGION": "eu-west",
        "REDIS_STREAMING_REGISTRY__METADATA": "region=eu,api_key=key-value,db_password=pw-value",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(settings_cls=VaultSettings)


SECRET_VARIABLES = (
    "REDIS_STREAMING_VAULT__DB_PASSWORD",
    "REDIS_STREAMING_VAULT__OAUTH_CLIENT_SECRET",
    "REDIS_STREAMING_VAULT__SIGNING_KEY",
    "REDIS_STREAMING_VAULT__CLOUD_CREDENTIALS",
)
SECRET_SETTINGS = (
    "vault.db_password",
    "vault.oauth_client_secret",
    "vault.signing_key",
    "vault.cloud_credentials",
)


def _values(node: Any) -> list[Any]:
    """Every leaf value of a JSON document."""
    if isinstance(node, dict):
        return [v for child in node.values() for v in _values(child)]
    if isinstance(node, list):
        return [v for child in node for v in _values(child)]
    return [node]


def _source(env: dict[str, Any], name: str) -> dict[str, Any]:
    [source] = [s for s in env["propertySources"] if s["name"] == name]
    return dict(source["properties"])


async def test_env_masks_values_by_default(configured: Settings) -> None:
    async with serving(RedisStreamingApplication(settings=configured).asgi, started=False) as http:
        env = (await http.get("/actuator/env", headers=AUTH)).json()
    assert env["activeProfiles"] == []
    names = [s["name"] for s in env["propertySources"]]
    assert names == [
        "settings",
        "systemEnvironment",
        "applicationConfig: [file:./application.yaml]",
    ]
    for source in env["propertySources"]:
        assert {p["value"] for p in source["properties"].values()} == {MASK}
    system = _source(env, "systemEnvironment")
    assert "AWS_SECRET_ACCESS_KEY" not in system  # only the application's own variables
    assert system["REDIS_STREAMING_APP__VERSION"]["origin"] == (
        'System Environment Property "REDIS_STREAMING_APP__VERSION"'
    )


@pytest.mark.parametrize(("rule", "headers"), [("always", {}), ("when_authorized", AUTH)])
async def test_env_shows_values_but_never_secrets(
    configured: Settings, rule: str, headers: dict[str, str]
) -> None:
    settings = configured.model_copy(
        update={"actuator": configured.actuator.model_copy(update={"show_values": rule})}
    )
    async with serving(RedisStreamingApplication(settings=settings).asgi, started=False) as http:
        env = (await http.get("/actuator/env", headers=headers)).json()
        if rule == "when_authorized":
            hidden = (await http.get("/actuator/env", headers=WRONG)).json()
            assert _source(hidden, "settings")["app.version"]["value"] == MASK
        one = (await http.get("/actuator/env/mq.batch_size", headers=headers)).json()
        missing = await http.get("/actuator/env/no.such.thing", headers=headers)
    system = _source(env, "systemEnvironment")
    assert system["REDIS_STREAMING_APP__VERSION"]["value"] == "1.2.3"
    assert system["REDIS_STREAMING_ACTUATOR__TOKEN"]["value"] == MASK
    assert system["REDIS_STREAMING_REDIS__URL"]["value"] == "redis://:******@127.0.0.1:1/0"
    effective = _source(env, "settings")
    assert effective["mq.default_partitions"] == {
        "value": 12,
        "origin": 'System Environment Property "REDIS_STREAMING_MQ__DEFAULT_PARTITIONS"',
    }
    assert effective["mq.batch_size"] == {"value": 7, "origin": "application.yaml:2:15"}
    assert effective["mq.block_ms"] == {"value": 1000, "origin": "default"}
    assert effective["actuator.token"]["value"] == MASK
    assert effective["redis.url"]["value"] == "redis://:******@127.0.0.1:1/0"
    assert _source(env, "applicationConfig: [file:./application.yaml]")["app.name"] == {
        "value": "envapp",
        "origin": "application.yaml:4:9",
    }
    for variable in SECRET_VARIABLES:
        assert system[variable]["value"] == MASK, variable
    for name in SECRET_SETTINGS:
        assert effective[name]["value"] == MASK, name
    assert system["REDIS_STREAMING_VAULT__REGION"]["value"] == "eu-west"  # not a secret name
    assert effective["vault.region"]["value"] == "eu-west"
    from_yaml = _source(env, "applicationConfig: [file:./application.yaml]")
    for name in ("vault.password", "vault.client_secret", "vault.credentials"):
        assert from_yaml[name]["value"] == MASK, name
    metadata = effective["registry.metadata"]["value"]
    assert metadata == {"region": "eu", "api_key": MASK, "db_password": MASK}
    assert not [v for v in _values(env) if "-value" in str(v)]
    assert one["property"] == {"source": "settings", "value": 7}
    assert [s["name"] for s in one["propertySources"]] == [
        "settings",
        "applicationConfig: [file:./application.yaml]",
    ]
    assert missing.status_code == 404
    assert "mq.default_partitions" in missing.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:1/0?password=hunter2",
        "redis://127.0.0.1:1?db=0&password=hunter2&ssl_password=hunter2",
        "rediss://app:hunter2@[::1]:6380/0?ssl_keyfile_password=hunter2",
        "unix://:hunter2@/run/redis.sock?db=0",
    ],
)
async def test_env_and_configprops_mask_every_password_form(
    configured: Settings, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """``?password=`` and ``ssl_password=`` (which redis-py accepts) are masked like
    ``user:password@``, in every place a URL is shown, even with ``show_values=always``."""
    monkeypatch.setenv("REDIS_STREAMING_REDIS__URL", url)
    settings = load_settings(settings_cls=VaultSettings)
    always = settings.actuator.model_copy(update={"show_values": "always"})
    app = RedisStreamingApplication(settings=settings.model_copy(update={"actuator": always}))
    async with serving(app.asgi, started=False) as http:
        bodies = [
            (await http.get(path)).text
            for path in (
                "/actuator/env",
                "/actuator/env/redis.url",
                "/actuator/env/REDIS_STREAMING_REDIS__URL",
                "/actuator/configprops",
                "/actuator/configprops/redis",
            )
        ]
    for body in bodies:
        assert "hunter2" not in body
        assert MASK in body
    assert url.replace("hunter2", MASK) in bodies[1]  # the rest of the URL as written


async def test_env_by_variable_name(configured: Settings) -> None:
    async with serving(RedisStreamingApplication(settings=configured).asgi, started=False) as http:
        one = (await http.get("/actuator/env/REDIS_STREAMING_ACTUATOR__TOKEN")).json()
    assert one["property"] == {"source": "systemEnvironment", "value": MASK}


async def test_configprops(configured: Settings) -> None:
    settings = configured.model_copy(
        update={"actuator": configured.actuator.model_copy(update={"show_values": "always"})}
    )
    async with serving(RedisStreamingApplication(settings=settings).asgi, started=False) as http:
        everything = (await http.get("/actuator/configprops")).json()
        mq_only = (await http.get("/actuator/configprops/mq")).json()
        full = (await http.get("/actuator/configprops/redis_streaming.actuator")).json()
        missing = await http.get("/actuator/configprops/nope")
    beans = everything["contexts"]["envapp"]["beans"]
    mq = beans["mq-redis_streaming_starter.settings.MQSettings"]
    assert mq["prefix"] == "redis_streaming.mq"
    assert mq["properties"]["default_partitions"] == 12
    assert mq["properties"]["retry"]["max_attempts"] == 5
    assert mq["inputs"]["default_partitions"] == {
        "value": 12,
        "origin": 'System Environment Property "REDIS_STREAMING_MQ__DEFAULT_PARTITIONS"',
    }
    assert mq["inputs"]["block_ms"] == {}
    assert mq["inputs"]["retry"]["max_attempts"] == {}
    vault = beans[f"vault-{__name__}.Vault"]  # an application's own section, by its module
    assert vault["prefix"] == "redis_streaming.vault"
    assert vault["properties"]["region"] == "eu-west"
    assert vault["properties"]["signing_key"] == MASK
    actuator_bean = beans["actuator-redis_streaming_starter.settings.ActuatorSettings"]
    assert actuator_bean["properties"]["token"] == MASK
    assert actuator_bean["inputs"]["token"]["value"] == MASK
    assert beans["redis-redis_streaming_starter.settings.RedisSettings"]["properties"]["url"] == (
        "redis://:******@127.0.0.1:1/0"
    )
    registry = beans["registry-redis_streaming_starter.settings.RegistrySettings"]
    assert registry["properties"]["metadata"] == {"region": "eu", "api_key": MASK,
                                                  "db_password": MASK}  # fmt: skip
    assert not [v for v in _values(everything) if "-value" in str(v)]
    assert list(mq_only["contexts"]["envapp"]["beans"]) == [
        "mq-redis_streaming_starter.settings.MQSettings"
    ]
    assert list(full["contexts"]["envapp"]["beans"]) == [
        "actuator-redis_streaming_starter.settings.ActuatorSettings"
    ]
    assert missing.status_code == 404
    assert "redis_streaming.mq" in missing.json()["detail"]


async def test_configprops_masks_by_default(configured: Settings) -> None:
    async with serving(RedisStreamingApplication(settings=configured).asgi, started=False) as http:
        beans = (await http.get("/actuator/configprops")).json()["contexts"]["envapp"]["beans"]
    mq = beans["mq-redis_streaming_starter.settings.MQSettings"]
    assert mq["properties"]["default_partitions"] == MASK
    assert mq["properties"]["retry"]["mode"] == MASK


# -- beans ----------------------------------------------------------------------------------------


async def test_beans_include_the_framework_and_user_providers(settings: Settings) -> None:
    async with actuator(settings, container=AppContainer, expose=["beans"]) as http:
        beans = (await http.get("/actuator/beans")).json()["contexts"]["testapp"]["beans"]
    ledger = beans["ledger"]
    assert ledger == {
        "aliases": [],
        "scope": "singleton",
        "type": "tests.starter.apps.orders.services.Ledger",
        "resource": "tests.starter.apps.orders.services.AppContainer",
        "dependencies": ["greeter"],
    }
    producer = beans["producer"]
    assert producer["type"] == f"{Producer.__module__}.{Producer.__qualname__}"
    assert {"redis", "settings"} <= set(producer["dependencies"])
    assert producer["resource"] == "redis_streaming_starter.container.Container"
    assert beans["consumer"]["type"] == f"{Consumer.__module__}.{Consumer.__qualname__}"
    assert beans["redis"]["scope"] == "resource"
    assert beans["redis"]["type"] == "redis.asyncio.client.Redis"
    assert beans["settings"]["type"] == "redis_streaming_starter.settings.Settings"


# -- loggers --------------------------------------------------------------------------------------


@pytest.fixture
def logger_name() -> Iterator[str]:
    """A fresh logger name; its level and ROOT's are restored afterwards."""
    name = f"tests.actuator_core.{uuid.uuid4().hex[:8]}"
    root_level = logging.root.level
    try:
        yield name
    finally:
        logging.getLogger(name).setLevel(logging.NOTSET)
        logging.root.setLevel(root_level)


async def test_loggers_list_and_change_levels(settings: Settings, logger_name: str) -> None:
    logging.getLogger(logger_name)
    async with actuator(settings, expose=["loggers"], token=TOKEN) as http:

        async def set_level(level: str | None, name: str = logger_name) -> httpx.Response:
            body = {"configuredLevel": level}
            return await http.post(f"/actuator/loggers/{name}", json=body, headers=AUTH)

        async def levels(name: str = logger_name) -> dict[str, Any]:
            return dict((await http.get(f"/actuator/loggers/{name}")).json())

        everything = (await http.get("/actuator/loggers")).json()
        assert everything["levels"] == ["OFF", "CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
        assert next(iter(everything["loggers"])) == "ROOT"
        assert everything["loggers"][logger_name]["configuredLevel"] is None

        assert (await set_level("debug")).status_code == 204
        assert await levels() == {"configuredLevel": "DEBUG", "effectiveLevel": "DEBUG"}
        assert logging.getLogger(logger_name).isEnabledFor(logging.DEBUG)
        for spring, python in [("WARN", "WARNING"), ("FATAL", "CRITICAL"), ("TRACE", "DEBUG")]:
            assert (await set_level(spring)).status_code == 204
            assert (await levels())["configuredLevel"] == python
        assert (await set_level("OFF")).status_code == 204
        assert (await levels())["configuredLevel"] == "OFF"
        assert not logging.getLogger(logger_name).isEnabledFor(logging.CRITICAL)

        assert (await set_level(None)).status_code == 204  # null resets: inherit again
        root = await levels("ROOT")
        assert await levels() == {"configuredLevel": None, "effectiveLevel": root["effectiveLevel"]}

        assert (await set_level("ERROR", "ROOT")).status_code == 204
        assert (await levels("ROOT"))["configuredLevel"] == "ERROR"
        assert (await set_level(None, "ROOT")).status_code == 204  # back to logging.level
        assert (await levels("ROOT"))["configuredLevel"] == "INFO"

        bad = await set_level("LOUD")
        assert bad.status_code == 422
        assert "use one of OFF, CRITICAL" in bad.text
        typo = await http.post(
            f"/actuator/loggers/{logger_name}", json={"level": "DEBUG"}, headers=AUTH
        )
        assert typo.status_code == 422
        assert (await set_level("INFO", "a..b")).status_code == 400
        assert (await http.get("/actuator/loggers/no.such.logger.yet")).status_code == 404

        wrong = await http.post(
            f"/actuator/loggers/{logger_name}", json={"configuredLevel": "DEBUG"}, headers=WRONG
        )
        assert wrong.status_code == 401
        anonymous = await http.post(f"/actuator/loggers/{logger_name}", json={"x": 1})
        assert anonymous.status_code == 401  # the token is checked before the body


async def test_changing_loggers_needs_a_configured_token(
    settings: Settings, logger_name: str
) -> None:
    async with actuator(settings, expose=["loggers"]) as http:
        response = await http.post(
            f"/actuator/loggers/{logger_name}", json={"configuredLevel": "DEBUG"}, headers=AUTH
        )
    assert response.status_code == 403
    assert "REDIS_STREAMING_ACTUATOR__TOKEN" in response.json()["detail"]
    assert logging.getLogger(logger_name).level == logging.NOTSET


# -- threaddump -----------------------------------------------------------------------------------


async def _wait_in(started: asyncio.Event, event: asyncio.Event) -> None:
    started.set()
    await _innermost(event)


async def _innermost(event: asyncio.Event) -> None:
    await event.wait()


async def test_threaddump_json_and_text(settings: Settings) -> None:
    started, event = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(_wait_in(started, event), name="parked-task")
    async with asyncio.timeout(5):
        await started.wait()
    released = threading.Event()
    thread = threading.Thread(target=released.wait, name="parked-thread", daemon=True)
    thread.start()
    try:
        async with actuator(settings, expose=["threaddump"]) as http:
            dump = (await http.get("/actuator/threaddump")).json()
            text = await http.get("/actuator/threaddump", headers={"Accept": "text/plain"})
    finally:
        released.set()
        event.set()
        await task
        thread.join(5)
    threads = {t["threadName"]: t for t in dump["threads"]}
    parked = threads["parked-thread"]
    assert parked["daemon"] is True
    assert parked["threadState"] == "WAITING"
    top = [(f["className"], f["methodName"]) for f in parked["stackTrace"][:2]]
    assert top == [("threading.Condition", "wait"), ("threading.Event", "wait")]
    assert threads[threading.current_thread().name]["threadState"] == "RUNNABLE"
    [parked_task] = [t for t in dump["tasks"] if t["name"] == "parked-task"]
    assert parked_task["state"] == "PENDING"
    assert parked_task["coroutine"] == "_wait_in"
    assert parked_task["awaiting"] == "Future pending"
    methods = [f["methodName"] for f in parked_task["stackTrace"]]
    assert methods == ["wait", "_innermost", "_wait_in"]  # innermost first
    assert parked_task["stackTrace"][1]["fileName"] == __file__
    assert parked_task["stackTrace"][1]["lineNumber"] > 0
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert '"parked-thread"' in text.text
    assert 'Task "parked-task" PENDING _wait_in awaiting Future pending' in text.text
    assert f"at {__name__}._innermost ({__file__}:" in text.text


# -- schema and bad input -------------------------------------------------------------------------


async def test_openapi_describes_the_bodies(settings: Settings) -> None:
    async with actuator(settings, expose=["*"]) as http:
        schema = (await http.get("/openapi.json")).json()
    schemas = schema["components"]["schemas"]
    for name in ("SystemHealth", "Info", "Env", "ConfigProps", "Beans", "Loggers", "ThreadDump"):
        assert name in schemas, name
    change = schemas["LoggerLevelChange"]
    assert "configuredLevel" in change["required"]
    assert "/actuator/loggers/{name}" in schema["paths"]

    def props(name: str) -> dict[str, Any]:
        return dict(schemas[name]["properties"])

    def ref(node: dict[str, Any]) -> str:
        return str(node.get("$ref") or node["items"]["$ref"]).rsplit("/", 1)[-1]

    health = props("SystemHealth")
    assert health["status"]["type"] == "string"
    assert (health["groups"]["type"], health["groups"]["items"]) == ("array", {"type": "string"})
    assert {"status", "groups"} <= set(schemas["SystemHealth"]["required"])
    view = props("DeadLetterView")
    required = set(schemas["DeadLetterView"]["required"])
    assert required >= {"id", "payload", "payloadSize", "payloadTruncated", "payloadEncoding"}
    assert view["payloadTruncated"]["type"] == "boolean"
    assert view["payloadSize"]["type"] == "integer"
    assert view["payloadEncoding"]["enum"] == ["json", "text", "base64"]
    assert view["failedAt"]["type"] == "integer"
    page = props("DeadLetterPage")
    assert ref(page["entries"]) == "DeadLetterView"
    assert page["entries"]["type"] == "array"
    assert {"type": "null"} in page["next"]["anyOf"]
    replay = props("ReplayRequest")
    ids = next(a for a in replay["ids"]["anyOf"] if a.get("type") == "array")
    assert (ids["minItems"], ids["maxItems"]) == (1, 1000)
    assert ids["items"]["pattern"] == "^[0-9]{1,19}-[0-9]{1,19}$"
    create = props("TopicCreate")
    assert create["name"]["pattern"] == "^[A-Za-z0-9._-]{1,200}$"
    partitions = next(a for a in create["partitions"]["anyOf"] if a.get("type") == "integer")
    assert (partitions["minimum"], partitions["maximum"]) == (1, 4096)
    listing = schema["paths"]["/actuator/topics/{topic}/dlq"]["get"]
    limit = next(p for p in listing["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 1000)
    replay_op = schema["paths"]["/actuator/topics/{topic}/dlq/replay"]["post"]
    assert {"401", "403", "200"} <= set(replay_op["responses"])
    assert ref(replay_op["requestBody"]["content"]["application/json"]["schema"]) == (
        "ReplayRequest"
    )


async def test_enabled_false_serves_no_actuator_but_the_application_runs(
    settings: Settings,
) -> None:
    async with actuator(settings, started=True, enabled=False, expose=["*"]) as http:
        for path in ("/actuator", "/actuator/health", "/actuator/info", "/actuator/env"):
            assert (await http.get(path)).status_code == 404, path
        schema = (await http.get("/openapi.json")).json()
        assert not [p for p in schema["paths"] if p.startswith("/actuator")]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/actuator/env/%00%ff", None),
        ("GET", "/actuator/configprops/%20", None),
        ("GET", "/actuator/health/%2F%2F", None),
        ("GET", "/actuator/health/", None),
        ("GET", "/actuator/loggers/%C3%A9..", None),
        ("POST", "/actuator/loggers/x", [1, 2]),
        ("POST", "/actuator/loggers/x", {"configuredLevel": 5}),
        ("POST", "/actuator/loggers/.", {"configuredLevel": "INFO"}),
        ("POST", "/actuator/loggers/%20", {"configuredLevel": None}),
    ],
)
async def test_bad_input_is_a_4xx(
    settings: Settings, method: str, path: str, body: Any, logger_name: str
) -> None:
    async with actuator(settings, expose=["*"], token=TOKEN) as http:
        response = await http.request(method, path, json=body, headers=AUTH)
    assert 400 <= response.status_code < 500, response.text
    assert "detail" in response.json()
