"""``redis-streaming run`` through the real command in a subprocess: a misspelled setting, a
wiring mistake and a taken port stop it with one ``redis-streaming:`` line and exit code 2
before anything starts; SIGTERM deregisters before the port closes. And the ``dlq`` commands'
answers for an unknown topic and their one-line-per-entry text."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from redis_streaming.registry import RegistryOptions, ServiceDiscovery
from redis_streaming.testing import free_port
from tests.helpers import wait_until
from tests.starter.support import app_env, clean_env, cli, start_app

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60

APP = """\
from redis_streaming_starter import RedisStreamingApplication, listener


@listener("orders", group="billing")
async def bill(order: dict) -> None:
    pass


app = RedisStreamingApplication(listener_packages=["main"])
"""


def _run(target: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "redis_streaming_starter.cli", "run", target]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def _one_line(run: subprocess.CompletedProcess[str]) -> str:
    """The run failed with exit code 2 and said why in exactly one ``redis-streaming:`` line."""
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("redis-streaming: ")
    assert "EMBEDDED" not in run.stderr + run.stdout
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "main.py").write_text(APP)
    return tmp_path


# -- M1, F6: a misspelled setting never starts anything ----------------------------------------


@pytest.mark.parametrize(
    ("variables", "yaml", "says"),
    [
        (
            {"REDIS_STREAMING_REDIS_URL": "redis://127.0.0.1:6390/0"},
            None,
            "REDIS_STREAMING_REDIS_URL is not a setting: did you mean REDIS_STREAMING_REDIS__URL?",
        ),
        (
            {"REDIS_STREAMING_ACTUATER__EXPOSE": "*"},
            None,
            "REDIS_STREAMING_ACTUATER__EXPOSE is not a setting: did you mean "
            "REDIS_STREAMING_ACTUATOR__EXPOSE?",
        ),
        (
            {},
            "actuater:\n  expose: '*'\n",
            "application.yaml:1:1: 'actuater' is not a setting: did you mean 'actuator'?",
        ),
        (
            {"REDIS_STREAMING_REDIS__PASSWORD": "hunter2"},
            None,
            "REDIS_STREAMING_REDIS__PASSWORD is not a setting: redis has no setting 'password'",
        ),
    ],
    ids=["env-one-underscore", "env-section", "yaml-section", "secret"],
)
def test_a_misspelled_setting_stops_run(
    project: Path, variables: dict[str, str], yaml: str | None, says: str
) -> None:
    if yaml is not None:
        (project / "application.yaml").write_text(yaml)
    # No redis.url: were the typo ignored, an embedded server would start and serve.
    env = clean_env(REDIS_STREAMING_APP__PORT=str(free_port()), **variables)
    line = _one_line(_run("main:app", project, env))
    assert says in line
    assert "hunter2" not in line


# -- m1: listener wiring errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "says"),
    [
        ("tests.starter.apps.no_param", "has no parameter for the payload"),
        ("tests.starter.apps.bad_provide", "Provide['nope'] names no provider"),
        ("tests.starter.apps.broken_import", "No module named 'no_such_module_anywhere'"),
        ("tests.starter.apps.unprovided", "container provides no instance of it"),
        ("tests.starter.apps.dup_ids", "two listeners have the id 'same'"),
        (
            "tests.starter.apps.dup_topic",
            "tests.starter.apps.dup_topic.bill and tests.starter.apps.dup_topic.bill_again",
        ),
    ],
)
def test_a_wiring_mistake_stops_run_with_one_line(package: str, says: str) -> None:
    env = clean_env(
        # unreachable (and redis.cluster unset: connecting asks the server at once), so the
        # error shows that the wiring is checked before Redis is connected
        REDIS_STREAMING_REDIS__URL=f"redis://127.0.0.1:{free_port()}/0",
        REDIS_STREAMING_APP__PORT=str(free_port()),
        REDIS_STREAMING_MQ__LISTENER_PACKAGES=package,
    )
    line = _one_line(_run("tests.starter.apps.slow:app", ROOT, env))
    assert says in line
    assert "Traceback" not in line


def test_a_file_path_instead_of_a_module_gets_the_module_name(project: Path) -> None:
    line = _one_line(_run("main.py", project, clean_env()))
    assert "'main.py' is a file" in line
    assert "e.g. main:app" in line
    (project / "myapp").mkdir()
    line = _one_line(_run("myapp/main.py", project, clean_env()))
    assert "e.g. myapp.main:app" in line


# -- m2: a port in use -------------------------------------------------------------------------


def test_a_port_in_use_stops_run_before_anything_starts(
    project: Path, rs_server_url: str, rs_namespace: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = app_env(rs_server_url, rs_namespace, port)
        line = _one_line(_run("main:app", project, env))
    assert f"cannot listen on 127.0.0.1:{port} (the port is in use)" in line
    assert "REDIS_STREAMING_APP__PORT" in line
    client = redis.Redis.from_url(rs_server_url)
    try:  # no listener started: no topic, group or lease was written
        assert client.keys(f"{rs_namespace}:*") == []
    finally:
        client.close()


# -- m10: SIGTERM deregisters before the port closes -------------------------------------------

PROBED = """\
import asyncio
from pathlib import Path

from redis_streaming_starter import RedisStreamingApplication, load_settings

app = RedisStreamingApplication(
    settings=load_settings(defaults={"app": {"name": "probed"}, "registry": {"enabled": True}})
)


@app.asgi.get("/slow")
async def slow() -> dict[str, str]:
    Path("in-flight").touch()
    await asyncio.sleep(2)
    return {"slow": "done"}
"""


async def _refused(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    except OSError:
        return True
    writer.close()
    return False


async def test_sigterm_deregisters_before_the_port_refuses_connections(
    tmp_path: Path, rs_server_url: str, rs_namespace: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    (tmp_path / "probed.py").write_text(PROBED)
    port = free_port()
    env = app_env(rs_server_url, rs_namespace, port)
    proc = start_app("probed:app", env, cwd=tmp_path)
    procs.append(proc)
    client = aioredis.Redis.from_url(rs_server_url)
    discovery = ServiceDiscovery(client, RegistryOptions(namespace=rs_namespace))
    try:

        async def registered() -> bool:
            return bool(await discovery.instances("probed"))

        await wait_until(registered, 30, "the instance registered")
        # A request in flight keeps the stopping server busy after its port closed: the
        # window in which a late deregistration would show.
        answers: list[int] = []
        request = threading.Thread(
            target=lambda: answers.append(httpx.get(f"http://127.0.0.1:{port}/slow").status_code)
        )
        request.start()
        await wait_until((tmp_path / "in-flight").exists, 10, "the request in flight")
        proc.send_signal(signal.SIGTERM)
        samples: list[tuple[bool, bool]] = []
        while proc.poll() is None:
            # Port first, registry second: "refused, then still registered" can only mean the
            # port closed before the deregistration.
            refused = await _refused(port)
            samples.append((refused, await registered()))
            await asyncio.sleep(0.01)
        request.join(10)
    finally:
        await client.aclose()
    assert proc.returncode == 0
    assert answers == [200]  # the request in flight was answered
    assert any(refused for refused, _ in samples)  # the probe saw the port closed
    assert (True, True) not in samples, "registered while refusing connections"


# -- m4, m5: dlq commands ----------------------------------------------------------------------


def test_dlq_commands_of_an_unknown_topic_fail_as_topics_describe(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ("dlq", "list", "nope"),
        ("dlq", "replay", "nope"),
        ("dlq", "purge", "nope", "--yes"),
        ("topics", "describe", "nope"),
    ):
        code, out, err = cli(capsys, *argv)
        assert (code, out) == (1, ""), argv
        assert err.startswith("redis-streaming: topic 'nope' does not exist"), argv
    assert cli(capsys, "topics", "create", "known", "-p", "1")[0] == 0
    assert cli(capsys, "dlq", "list", "known") == (0, "(no dead letters)\n", "")


def test_dlq_list_prints_one_line_per_entry(
    cli_env: str, capsys: pytest.CaptureFixture[str], rs_server_url: str
) -> None:
    assert cli(capsys, "topics", "create", "orders", "-p", "1")[0] == 0
    error = "payload is not a valid Order: 1 validation error for Order\namount\n  Field required"
    client = redis.Redis.from_url(rs_server_url)
    for n in range(2):
        client.xadd(
            f"{cli_env}:dlq:{{orders}}",
            {"payload": f'{{"n":{n}}}', "content_type": "application/json", "ts": 1,
             "dlq_group": "g", "dlq_partition": 0, "dlq_reason": "undecodable",
             "dlq_attempts": 1, "dlq_error_type": "DecodeError", "dlq_error": error,
             "dlq_origin_id": f"1-{n}"},
        )  # fmt: skip
    client.close()
    code, out, _ = cli(capsys, "dlq", "list", "orders")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert all(line.endswith("DecodeError: payload is not a valid Order: 1 validation error "
                             "for Order ...") for line in lines)  # fmt: skip
    code, out, _ = cli(capsys, "--json", "dlq", "list", "orders")
    assert error in out.replace("\\n", "\n")  # the whole text stays in --json


# -- the CLI knows no application's own sections -----------------------------------------------


def test_cli_commands_accept_application_sections_but_not_typos(
    cli_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_STREAMING_SHOP__FREE_SHIPPING_OVER", "99")
    code, out, _ = cli(capsys, "health")
    assert code == 0
    assert out.startswith("UP")
    monkeypatch.setenv("REDIS_STREAMING_MQ_NAMESPACE", "shop")
    code, _, err = cli(capsys, "topics", "list")
    assert code == 2
    assert "did you mean REDIS_STREAMING_MQ__NAMESPACE?" in err
