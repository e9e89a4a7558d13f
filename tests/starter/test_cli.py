from __future__ import annotations

import json

import pytest
import redis

from redis_streaming.testing import RedisServer, free_port
from tests.starter.support import app_env, cli, start_app, stop_app, wait_ready


def test_topics_commands(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "topics", "list") == (0, "(no topics)\n", "")
    code, out, _ = cli(capsys, "topics", "create", "orders", "-p", "3")
    assert (code, out) == (0, "topic orders: 3 partitions\n")
    code, out, _ = cli(capsys, "--json", "topics", "describe", "orders")
    assert code == 0
    assert len(json.loads(out)["partitions"]) == 3
    assert cli(capsys, "topics", "list")[1] == "orders\n"
    code, _, err = cli(capsys, "topics", "delete", "orders")
    assert code == 2
    assert "--yes" in err
    code, out, _ = cli(capsys, "topics", "delete", "orders", "--yes")
    assert code == 0
    assert out.startswith("deleted topic orders")
    code, _, err = cli(capsys, "topics", "describe", "orders")
    assert code == 1
    assert "does not exist" in err
    code, _, err = cli(capsys, "topics", "create", "bad name", "-p", "1")
    assert code == 2
    assert "invalid topic name" in err


def test_dlq_commands_replay(
    cli_env: str, capsys: pytest.CaptureFixture[str], rs_server_url: str
) -> None:
    client = redis.Redis.from_url(rs_server_url)
    dlq_key = f"{cli_env}:dlq:{{t}}"
    for n in range(2):
        client.xadd(
            dlq_key,
            {"payload": f'{{"n":{n}}}', "content_type": "application/json", "ts": 1,
             "dlq_group": "g", "dlq_partition": 0, "dlq_reason": "max_attempts",
             "dlq_attempts": 3, "dlq_error_type": "ValueError", "dlq_error": "boom",
             "dlq_origin_id": f"1-{n}"},
        )  # fmt: skip
    code, out, _ = cli(capsys, "dlq", "list", "t")
    assert code == 0
    assert out.count("max_attempts") == 2
    first_id = out.split()[0]
    code, out, _ = cli(capsys, "dlq", "replay", "t", "--id", first_id)
    assert (code, out) == (0, "replayed 1 dead letters\n")
    replayed = client.xrange(f"{cli_env}:redeliver:{{t:0}}:g")
    assert [f[b"origin_id"] for _, f in replayed] == [b"1-1"]  # newest first: n=1
    assert cli(capsys, "dlq", "purge", "t")[0] == 2
    assert cli(capsys, "dlq", "purge", "t", "--yes")[1] == "purged 1 dead letters\n"
    client.close()


def test_health_up_and_down(cli_env: str, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    code, out, _ = cli(capsys, "health")
    assert code == 0
    assert out.startswith("UP")
    monkeypatch.setenv("REDIS_STREAMING_REDIS__URL", f"redis://127.0.0.1:{free_port()}/0")
    code, out, _ = cli(capsys, "health")
    assert code == 1
    assert out.startswith("DOWN")


def test_no_url_says_how_to_set_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_STREAMING_REDIS__URL", raising=False)
    code, _, err = cli(capsys, "topics", "list")
    assert code == 2
    assert "REDIS_STREAMING_REDIS__URL=" in err


def test_run_serves_the_application(rs_server_url: str, rs_namespace: str) -> None:
    port = free_port()
    proc = start_app("tests.starter.apps.slow:app", app_env(rs_server_url, rs_namespace, port))
    try:
        wait_ready(f"http://127.0.0.1:{port}/actuator/health", proc, 20)
    finally:
        stop_app(proc)
    assert proc.returncode == 0  # stopped by the SIGTERM, in time


def test_run_rejects_what_is_not_an_application(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", "tests.starter.apps.orders.services:Greeter")
    assert code == 2
    assert "not a RedisStreamingApplication" in err


PASSWORD = "Pw-Sup3rS3cret-xyz"


@pytest.fixture
def secured(rs_server: RedisServer) -> RedisServer:
    """A private server whose default user and user ``app`` need :data:`PASSWORD`."""
    client = redis.Redis(port=rs_server.port)
    client.acl_setuser("app", enabled=True, passwords=[f"+{PASSWORD}"], keys="*",
                       channels="*", commands=["+@all"])  # fmt: skip
    client.config_set("requirepass", PASSWORD)
    client.close()
    return rs_server


@pytest.mark.parametrize(
    "url",
    [
        "redis://:{pw}@127.0.0.1:{port}/0",
        "redis://app:{pw}@127.0.0.1:{port}/0",
        "redis://127.0.0.1:{port}/0?password={pw}",
        "redis://127.0.0.1:{port}?db=0&password={pw}",
    ],
)
def test_health_prints_the_url_without_the_password(
    secured: RedisServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    url: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("REDIS_STREAMING_REDIS__URL", url.format(pw=PASSWORD, port=secured.port))
    code, out, err = cli(capsys, "health")
    assert code == 0, out + err
    assert out.startswith("UP  redis://")
    assert f"127.0.0.1:{secured.port}" in out
    assert "******" in out
    assert PASSWORD not in out + err
    code, out, err = cli(capsys, "--json", "health")
    assert code == 0
    assert json.loads(out)["redis"] == url.format(pw="******", port=secured.port)
    assert PASSWORD not in out + err

    wrong = url.format(pw="Wr0ng-Passw0rd-abc", port=secured.port)
    monkeypatch.setenv("REDIS_STREAMING_REDIS__URL", wrong)
    code, out, err = cli(capsys, "health")
    assert code == 1
    assert out.startswith("DOWN  redis://")
    assert "Wr0ng-Passw0rd-abc" not in out + err


@pytest.mark.parametrize("cluster", [None, "false"])
def test_refused_credentials_are_not_called_unreachable(
    secured: RedisServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    cluster: str | None,
) -> None:  # fmt: skip
    monkeypatch.setenv(
        "REDIS_STREAMING_REDIS__URL", f"redis://app:nope-{PASSWORD}@127.0.0.1:{secured.port}/0"
    )
    if cluster:
        monkeypatch.setenv("REDIS_STREAMING_REDIS__CLUSTER", cluster)
    code, _, err = cli(capsys, "topics", "list")  # through the framework's errors
    assert code != 0
    assert "refused the credentials" in err
    assert "REDIS_STREAMING_REDIS__URL" in err
    assert "unreachable" not in err
    assert PASSWORD not in err
    code, out, err = cli(capsys, "health")  # the command's own call of the server
    assert code != 0
    assert "refused the credentials" in out + err
    assert "unreachable" not in out + err
    assert PASSWORD not in out + err
