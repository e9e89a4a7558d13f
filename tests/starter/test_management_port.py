"""``actuator.port``: the actuator on its own port, the application's routes without it."""

from __future__ import annotations

import signal
import socket
import subprocess

import httpx

from redis_streaming.testing import free_port
from tests.starter.support import app_env, start_app, wait_ready


def _run(rs_server_url: str, rs_namespace: str, port: int, mport: int) -> subprocess.Popen[bytes]:
    env = app_env(rs_server_url, rs_namespace, port, ACTUATOR__PORT=str(mport),
                  ACTUATOR__EXPOSE="health,info,listeners")  # fmt: skip
    return start_app("tests.starter.apps.fuzz:app", env, stderr=subprocess.PIPE)


def test_actuator_served_on_its_own_port(rs_server_url: str, rs_namespace: str) -> None:
    port, mport = free_port(), free_port()
    proc = _run(rs_server_url, rs_namespace, port, mport)
    try:
        wait_ready(f"http://127.0.0.1:{mport}/actuator/health/readiness", proc, 20)
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
        proc = _run(rs_server_url, rs_namespace, free_port(), mport)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert b"REDIS_STREAMING_ACTUATOR__PORT" in err
    assert b"Traceback" not in err
