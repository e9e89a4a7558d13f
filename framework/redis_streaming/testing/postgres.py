"""A private PostgreSQL server on a free loopback port, for tests of change data capture.

The binaries are ``postgres`` and ``initdb`` from PATH, else those bundled with the ``pgserver``
wheel (part of the ``dev`` extra), so a test suite needs only Python and pip. The server runs with
``wal_level=logical`` (logical replication slots, ``pgoutput``, publications) and without fsync:
committed data survives a crash of the server process, not one of the machine.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from redis_streaming.embedded import _die_with_parent, free_port
from redis_streaming.errors import ConfigurationError

__all__ = ["SETTINGS", "PostgresServer", "find_postgres_bin_dir"]

# Server settings (``-c name=value``): logical decoding on, durability off (tests only).
SETTINGS: dict[str, str] = {
    "wal_level": "logical",
    "max_replication_slots": "10",
    "max_wal_senders": "10",
    "fsync": "off",  # commits still reach the OS: a killed server loses nothing committed
    "full_page_writes": "off",  # torn pages need a machine crash, not a process crash
    "unix_socket_directories": "",  # TCP only
    "max_connections": "100",
}
_SUPERUSER = "postgres"
_PGSERVER_HINT = "pip install 'redis-streaming[dev]' (the pgserver wheel bundles PostgreSQL)"


def find_postgres_bin_dir() -> Path:
    """The directory holding ``postgres`` and ``initdb``.

    ``REDIS_STREAMING_POSTGRES_BIN_DIR`` names one explicitly; else the directory of ``postgres``
    on PATH (following a symlink, as Debian's /usr/lib/postgresql/<v>/bin); else the binaries
    bundled with the ``pgserver`` package. Raises ``ConfigurationError`` when there is none.
    """
    explicit = os.environ.get("REDIS_STREAMING_POSTGRES_BIN_DIR")
    if explicit:
        return Path(explicit)
    found = shutil.which("postgres")
    if found:
        for folder in (Path(found).resolve().parent, Path(found).parent):
            if (folder / "initdb").exists():
                return folder
    spec = importlib.util.find_spec("pgserver")  # finds the package without importing it
    for location in (spec and spec.submodule_search_locations) or ():
        folder = Path(location) / "pginstall" / "bin"
        if (folder / "postgres").exists():
            return folder
    raise ConfigurationError(
        f"no PostgreSQL server: put postgres and initdb on PATH, or {_PGSERVER_HINT}"
    )


def _server_user() -> tuple[int, int] | None:
    """The (uid, gid) to run the server as: None for the current user; PostgreSQL refuses to
    run as root, so as root the ``postgres`` user, else ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise ConfigurationError(
        "PostgreSQL refuses to run as root and there is no 'postgres' or 'nobody' user to run "
        "it as: create one (useradd --system postgres) or run the tests as another user"
    )


def _child_setup(user: tuple[int, int] | None) -> Callable[[], None]:
    def setup() -> None:  # pragma: no cover - runs in the child before exec
        if user is not None:
            os.setgroups([])
            os.setgid(user[1])
            os.setuid(user[0])
        _die_with_parent()  # after setuid: a change of credentials clears the signal

    return setup


class PostgresServer:
    """A private PostgreSQL cluster on 127.0.0.1 and a free port, superuser ``postgres``, trust
    authentication, UTF8, settings ``SETTINGS``.

    ``start()`` runs initdb the first time and returns once the server accepts connections. The
    process gets a parent-death signal, so it never outlives the Python process that started it.
    ``stop()`` is a fast shutdown, ``kill()`` a crash (SIGKILL to the server and its backends);
    both keep the data, and ``start()`` (or ``restart()``) brings it back on the same port,
    recovering from the WAL after a kill. ``close()`` stops it and removes its directory.
    """

    def __init__(self, port: int | None = None, bin_dir: Path | str | None = None) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.bin_dir = (Path(bin_dir) if bin_dir else find_postgres_bin_dir()).absolute()
        self._user = _server_user()
        self._dir = Path(tempfile.mkdtemp(prefix="redis-streaming-pg-"))
        self.data_dir = self._dir / "data"
        self.log_path = self._dir / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/postgres``."""
        return f"postgresql://{_SUPERUSER}@{self.host}:{self.port}/postgres"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def _run_initdb(self, timeout_s: float) -> None:
        if self._user is not None:
            os.chown(self._dir, *self._user)
        args = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", _SUPERUSER,
                "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]  # fmt: skip
        try:
            run = subprocess.run(
                args, cwd=self._dir, capture_output=True, timeout=timeout_s,
                preexec_fn=_child_setup(self._user),
            )  # fmt: skip
        except PermissionError as exc:  # as root: the server's user cannot reach bin_dir
            uid = os.geteuid() if self._user is None else self._user[0]
            raise ConfigurationError(
                f"cannot run {args[0]} as uid {uid} ({exc}): put PostgreSQL where it can read it"
            ) from exc
        if run.returncode != 0:
            raise ConfigurationError(f"initdb failed ({run.returncode}): {run.stderr.decode()}")

    def start(self, timeout_s: float = 30.0) -> PostgresServer:
        """Start the server (after initdb, the first time) and wait until it accepts
        connections; raises ``ConfigurationError`` with the server's log when it does not."""
        if self.running:
            return self
        if not (self.data_dir / "PG_VERSION").exists():
            self._run_initdb(timeout_s)
        options = [f"-c{name}={value}" for name, value in SETTINGS.items()]
        args = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-h", self.host, *options]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, cwd=self._dir, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=_child_setup(self._user), start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise ConfigurationError(
                    f"postgres did not start on port {self.port} within {timeout_s}s:\n"
                    + self.log_path.read_text(errors="replace")[-2000:]
                )
            time.sleep(0.02)
        return self

    def _ready(self) -> bool:
        """True once *this* process accepts connections: postmaster.pid names its pid and says
        ``ready`` (another server on the port would answer a connection)."""
        assert self.process is not None
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0] == str(self.process.pid) and lines[7].strip() == "ready"

    def stop(self, timeout_s: float = 30.0) -> None:
        """Fast shutdown (SIGINT: sessions are disconnected, a checkpoint is written); SIGKILL
        when it takes longer than ``timeout_s``. Returns once the server has exited."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout_s)

    def kill(self) -> None:
        """SIGKILL the server and its backends, as a crash would; the data stays."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.stop()

    def restart(self) -> PostgresServer:
        """Stop (fast shutdown) and start again on the same port, with the same data."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove its directory (the data)."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        proc = getattr(self, "process", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        d = getattr(self, "_dir", None)
        if d is not None and d.exists():
            shutil.rmtree(d, ignore_errors=True)
