"""``actuator.port``: the actuator on its own port, the application's routes without it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from redis_streaming.testing import free_port


def _env(rs_server_url: str, rs_namespace: str, port: int, actuator_port: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_STREAMING_REDIS__URL": rs_server_url,
        "REDIS_STREAMING_MQ__NAMESPACE": rs_namespace,
        "REDIS_STREAMING_APP__PORT": str(port),
        "REDIS_STREAMING_ACTUATOR__PORT": str(actuator_port),
        "REDIS_STREAMING_ACTUATOR__EXPOSE": "health,info,listeners",
    }


def _run(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "redis_streaming_starter.cli", "run", "tests.starter.apps.fuzz:app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_actuator_served_on_its_own_port(rs_server_url: str, rs_namespace: str) -> None:
    port, mport = free_port(), free_port()
    proc = _run(_env(rs_server_url, rs_namespace, port, mport))
    try:
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                status = httpx.get(
                    f"http://127.0.0.1:{mport}/actuator/health/readiness"
                ).status_code
            except httpx.HTTPError:
                time.sleep(0.1)
        assert status == 200
        listeners = httpx.get(f"http://127.0.0.1:{mport}/actuator/listeners").json()
        assert "meter" in listeners["listeners"]
        # the application's own port serves no actuator
        assert httpx.get(f"http://127.0.0.1:{port}/actuator/health").status_code == 404
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err.decode(errors="replace")
        # both ports are closed afterwards
        for p in (port, mport):
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", p)) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_taken_actuator_port_is_a_clear_error(rs_server_url: str, rs_namespace: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        mport = taken.getsockname()[1]
        proc = _run(_env(rs_server_url, rs_namespace, free_port(), mport))
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert b"REDIS_STREAMING_ACTUATOR__PORT" in err
    assert b"Traceback" not in err
