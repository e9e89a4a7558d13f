"""Shared helpers of the starter tests: the command line in this process, and an application
run as a real process (``redis-streaming run``, uvicorn) as in production."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from redis_streaming_starter.cli import main


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command line in this process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def clean_env(**variables: str) -> dict[str, str]:
    """This process's environment without its REDIS_STREAMING_* variables (PYTHONPATH stays: a
    planted bug's copy of the packages comes first there), WARNING logs, and ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("REDIS_STREAMING_")}
    return {**env, "REDIS_STREAMING_LOGGING__LEVEL": "WARNING", **variables}


def app_env(url: str, namespace: str, port: int, **settings: str) -> dict[str, str]:
    """``clean_env`` for an application on ``url`` with ``namespace``, serving on ``port``;
    ``settings`` by their names after ``REDIS_STREAMING_`` (``ACTUATOR__EXPOSE="*"``)."""
    values = {"REDIS__URL": url, "MQ__NAMESPACE": namespace, "APP__PORT": str(port), **settings}
    return clean_env(**{f"REDIS_STREAMING_{name}": value for name, value in values.items()})


def start_app(
    target: str, env: dict[str, str], *, cwd: Path | None = None, stderr: int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """``redis-streaming run TARGET`` in a process of its own (stdout discarded)."""
    cmd = [sys.executable, "-m", "redis_streaming_starter.cli", "run", target]
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """Poll ``url`` until it answers 200; fails if ``proc`` exits first or ``timeout_s`` pass."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "the application exited"
        assert time.monotonic() < deadline, f"the application did not answer {url} in time"
        time.sleep(0.1)


def stop_app(proc: subprocess.Popen[bytes], timeout_s: float = 15) -> bytes:
    """SIGTERM, as a process manager stops it; SIGKILL if it has not exited within
    ``timeout_s``. Returns what it wrote to stderr when that was piped."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or b""
