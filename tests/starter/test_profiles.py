"""Profiles (``REDIS_STREAMING_PROFILES``, ``load_settings(profiles=...)``) and ``.env``: the
files' order, the environment winning over them, unknown names and bad values in them named
with their line, ``isolated`` reading none of them, and ``/actuator/env`` and
``/actuator/info`` of a real ``redis-streaming run`` showing profiles and origins."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from redis_streaming import ConfigurationError
from redis_streaming.testing import free_port
from redis_streaming_starter import RedisStreamingApplication, load_settings
from tests.helpers import serving
from tests.starter.support import app_env, start_app, stop_app, wait_ready

BASE = """\
app:
  name: base
  version: "1.0"
mq:
  default_partitions: 3
  batch_size: 10
"""
PROD = """\
app:
  name: prod
mq:
  batch_size: 20
"""
EU = """\
mq:
  batch_size: 30
  block_ms: 700
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("REDIS_STREAMING_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "application.yaml").write_text(BASE)
    (tmp_path / "application-prod.yaml").write_text(PROD)
    (tmp_path / "application-eu.yaml").write_text(EU)
    return tmp_path


def test_profiles_override_in_order_and_the_environment_wins(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = load_settings()
    assert (plain.app.name, plain.mq.batch_size, plain.active_profiles) == ("base", 10, ())
    monkeypatch.setenv("REDIS_STREAMING_PROFILES", "prod,eu")
    s = load_settings()
    assert s.active_profiles == ("prod", "eu")
    assert s.app.name == "prod"  # prod over application.yaml
    assert s.mq.batch_size == 30  # eu over prod: the last profile wins
    assert s.mq.block_ms == 700
    assert s.mq.default_partitions == 3  # sections merge field by field across the files
    assert s.app.version == "1.0"
    monkeypatch.setenv("REDIS_STREAMING_PROFILES", "eu, prod")
    assert load_settings().mq.batch_size == 20
    monkeypatch.setenv("REDIS_STREAMING_MQ__BATCH_SIZE", "40")
    assert load_settings().mq.batch_size == 40  # the environment wins over every file
    chosen = load_settings(profiles=["eu"])  # replaces the variable
    assert (chosen.active_profiles, chosen.app.name, chosen.mq.block_ms) == (("eu",), "base", 700)
    assert load_settings(profiles="prod,eu").active_profiles == ("prod", "eu")
    assert load_settings(mq={"batch_size": 50}).mq.batch_size == 50  # code wins over all


async def test_a_profile_without_its_file_is_active_and_logged_at_start(
    files: Path, rs_server_url: str, rs_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        profiles="prod,staging",
        redis={"url": rs_server_url},
        mq={"namespace": rs_namespace},
        logging={"level": "INFO"},
    )
    assert settings.active_profiles == ("prod", "staging")
    assert settings.app.name == "prod"
    app = RedisStreamingApplication(settings=settings)
    with caplog.at_level(logging.INFO, logger="redis_streaming_starter"):
        async with app.lifespan():
            pass
    said = [r.getMessage() for r in caplog.records if "profile" in r.getMessage()]
    assert said == [
        "profiles active: prod, staging",
        "profile staging: no application-staging.yaml, nothing read for it",
    ]


def test_unknown_names_in_profile_files_and_dotenv_are_errors_with_their_line(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (files / "application-eu.yaml").write_text("mq:\n  batch_siz: 3\nprofiles: [prod]\n")
    (files / ".env").write_text("# local\nREDIS_STREAMING_MQ__BLOK_MS=500\nOTHER_TOOL=1\n")
    monkeypatch.setenv("REDIS_STREAMING_PROFILES", "eu")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    lines = str(caught.value).splitlines()[1:]
    assert [line.strip() for line in lines] == [
        ".env:2: REDIS_STREAMING_MQ__BLOK_MS is not a setting: did you mean "
        "REDIS_STREAMING_MQ__BLOCK_MS? Fix the name and restart",
        "application-eu.yaml:2:3: 'mq.batch_siz' is not a setting: did you mean "
        "'mq.batch_size'? Fix the name and restart",
        "application-eu.yaml:3:1: 'profiles' is not a setting: profiles are chosen by the "
        "variable REDIS_STREAMING_PROFILES=prod,eu (or load_settings(profiles=...)), not in a "
        "file. Fix the name and restart",
    ]
    monkeypatch.setenv("REDIS_STREAMING_PROFILES", "prod")  # eu's file is not read now
    (files / ".env").write_text("OTHER_TOOL=1\n")
    assert load_settings().app.name == "prod"


def test_a_bad_value_in_a_file_names_the_file_and_line(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (files / "application-eu.yaml").write_text("mq:\n  batch_size: 0\n")
    (files / ".env").write_text("REDIS_STREAMING_MQ__BLOCK_MS=-3\n")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(profiles=["eu"])
    lines = [line.strip() for line in str(caught.value).splitlines()[1:]]
    assert lines == [
        "application-eu.yaml:2:15: mq.batch_size=0: Input should be greater than or equal to 1. "
        "Fix the variable (or the file) and restart",
        ".env:1: REDIS_STREAMING_MQ__BLOCK_MS='-3': Input should be greater than or equal to 1. "
        "Fix the variable (or the file) and restart",
    ]


@pytest.mark.parametrize(
    ("given", "where"),
    [
        ({"variable": "prod,../etc/x"}, "REDIS_STREAMING_PROFILES: '../etc/x'"),
        ({"argument": ["prod", "eu/west"]}, "load_settings(profiles=...): 'eu/west'"),
        ({"dotenv": "REDIS_STREAMING_PROFILES=.hidden\n"}, "PROFILES in .env: '.hidden'"),
    ],
    ids=["variable", "argument", "dotenv"],
)
def test_a_bad_profile_name_is_an_error(
    files: Path, monkeypatch: pytest.MonkeyPatch, given: dict[str, object], where: str
) -> None:
    if "variable" in given:
        monkeypatch.setenv("REDIS_STREAMING_PROFILES", str(given["variable"]))
    if "dotenv" in given:
        (files / ".env").write_text(str(given["dotenv"]))
    profiles = given.get("argument")
    with pytest.raises(ConfigurationError, match="is not a profile name") as caught:
        load_settings(profiles=profiles)  # type: ignore[arg-type]
    assert where in str(caught.value)
    assert "REDIS_STREAMING_PROFILES=prod,eu" in str(caught.value)  # how to write it


def test_dotenv_is_read_and_the_environment_wins(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (files / ".env").write_text(
        "REDIS_STREAMING_PROFILES=prod\n"
        "REDIS_STREAMING_APP__VERSION=from-dotenv\n"
        "redis_streaming_mq__batch_size=25\n"  # names ignore case, as variables do
        "export REDIS_STREAMING_MQ__BLOCK_MS=600\n"
        "OTHER_TOOL_TOKEN=not-ours\n"
    )
    s = load_settings()
    assert s.active_profiles == ("prod",)  # REDIS_STREAMING_PROFILES from .env
    assert s.app.name == "prod"
    assert s.app.version == "from-dotenv"  # .env over application.yaml
    assert s.mq.batch_size == 25  # .env over the profile's file
    assert s.mq.block_ms == 600
    assert "OTHER_TOOL_TOKEN" not in os.environ  # read, not exported
    monkeypatch.setenv("REDIS_STREAMING_APP__VERSION", "from-env")
    monkeypatch.setenv("REDIS_STREAMING_PROFILES", "eu")
    s = load_settings()
    assert s.app.version == "from-env"  # the environment over .env
    assert s.active_profiles == ("eu",)
    assert s.app.name == "base"


def test_isolated_reads_no_dotenv_and_no_profile(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (files / ".env").write_text("REDIS_STREAMING_APP__VERSION=from-dotenv\nREDIS_STREAMING_X=1\n")
    monkeypatch.setenv("REDIS_STREAMING_PROFILES", "prod")
    s = load_settings(isolated=True, app={"name": "alone"})
    assert (s.app.name, s.app.version, s.mq.batch_size) == ("alone", "0.0.0", 100)
    assert s.active_profiles == ()
    with pytest.raises(ConfigurationError, match=r"isolated=True, profiles=.*drop isolated=True"):
        load_settings(isolated=True, profiles=["prod"])


async def test_env_lists_the_sources_in_order_with_their_origins(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In this process, without Redis: ``/actuator/env`` names each value's file and line."""
    (files / ".env").write_text("REDIS_STREAMING_APP__VERSION=2.0\n")
    monkeypatch.setenv("REDIS_STREAMING_PROFILES", "prod,eu,staging")
    monkeypatch.setenv("REDIS_STREAMING_MQ__BLOCK_MS", "800")
    monkeypatch.setenv("REDIS_STREAMING_ACTUATOR__EXPOSE", "env,info")
    monkeypatch.setenv("REDIS_STREAMING_ACTUATOR__SHOW_VALUES", "always")
    app = RedisStreamingApplication(settings=load_settings())
    async with serving(app.asgi, started=False) as http:
        env = (await http.get("/actuator/env")).json()
        one = (await http.get("/actuator/env/mq.batch_size")).json()
        dotenv = (await http.get("/actuator/env/REDIS_STREAMING_APP__VERSION")).json()
        info = (await http.get("/actuator/info")).json()
    assert env["activeProfiles"] == ["prod", "eu", "staging"]
    assert [s["name"] for s in env["propertySources"]] == [
        "settings",
        "systemEnvironment",
        "dotenv: [file:./.env]",
        "applicationConfig: [file:./application-eu.yaml]",
        "applicationConfig: [file:./application-prod.yaml]",
        "applicationConfig: [file:./application.yaml]",
    ]
    effective = {s["name"]: s for s in env["propertySources"]}["settings"]["properties"]
    assert effective["mq.block_ms"] == {
        "value": 800,
        "origin": 'System Environment Property "REDIS_STREAMING_MQ__BLOCK_MS"',
    }
    assert effective["app.version"] == {"value": "2.0", "origin": ".env:1"}
    assert effective["mq.batch_size"] == {"value": 30, "origin": "application-eu.yaml:2:15"}
    assert effective["app.name"] == {"value": "prod", "origin": "application-prod.yaml:2:9"}
    assert effective["mq.default_partitions"]["origin"] == "application.yaml:5:23"
    assert [(s["name"], s["property"]["value"]) for s in one["propertySources"]] == [
        ("settings", 30),
        ("applicationConfig: [file:./application-eu.yaml]", 30),
        ("applicationConfig: [file:./application-prod.yaml]", 20),
        ("applicationConfig: [file:./application.yaml]", 10),
    ]
    assert one["activeProfiles"] == ["prod", "eu", "staging"]
    assert dotenv["propertySources"] == [
        {"name": "dotenv: [file:./.env]", "property": {"value": "2.0", "origin": ".env:1"}}
    ]
    assert info["profiles"] == ["prod", "eu", "staging"]


def test_run_shows_profiles_and_origins(
    files: Path, rs_server_url: str, rs_namespace: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    """``redis-streaming run`` in a directory with profile files and a ``.env``."""
    (files / ".env").write_text("REDIS_STREAMING_PROFILES=prod\nREDIS_STREAMING_APP__VERSION=3\n")
    (files / "main.py").write_text(
        "from redis_streaming_starter import RedisStreamingApplication\n\n"
        "app = RedisStreamingApplication()\n"
    )
    port = free_port()
    env = app_env(
        rs_server_url,
        rs_namespace,
        port,
        PROFILES="prod,eu",  # the environment's, not .env's
        MQ__BATCH_SIZE="44",
        ACTUATOR__EXPOSE="env,info",
        ACTUATOR__SHOW_VALUES="always",
    )
    proc = start_app("main:app", env, cwd=files, stderr=subprocess.PIPE)
    procs.append(proc)
    base = f"http://127.0.0.1:{port}/actuator"
    wait_ready(f"{base}/info", proc)
    info = httpx.get(f"{base}/info").json()
    env_doc = httpx.get(f"{base}/env").json()
    stderr = stop_app(proc)
    assert proc.returncode == 0, stderr.decode()
    assert info["profiles"] == ["prod", "eu"]
    assert info["app"]["name"] == "prod"
    assert info["app"]["version"] == "3"
    effective = {s["name"]: s for s in env_doc["propertySources"]}["settings"]["properties"]
    assert effective["mq.batch_size"] == {
        "value": 44,
        "origin": 'System Environment Property "REDIS_STREAMING_MQ__BATCH_SIZE"',
    }
    assert effective["mq.block_ms"] == {"value": 700, "origin": "application-eu.yaml:3:13"}
    assert effective["app.name"] == {"value": "prod", "origin": "application-prod.yaml:2:9"}
    assert effective["app.version"] == {"value": "3", "origin": ".env:2"}
