"""A master, two replicas and three Sentinels on free loopback ports (:class:`SentinelGroup`),
for failover tests: kill the master with SIGKILL, wait for the Sentinels to promote a replica,
restart the old master as a replica.

The Sentinels are the suite's own server binary started with ``--sentinel``; like the data nodes
(:mod:`redis_streaming.testing.replication`) each dies with the process that started it, and
``close()`` stops every one by its PID.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.asyncio.sentinel import SentinelConnectionPool

from redis_streaming.errors import ConfigurationError
from redis_streaming.testing.replication import (
    HOST,
    ReplicaSet,
    ServerProcess,
    connected_replicas,
    role,
    wait_until,
)

__all__ = ["SentinelGroup"]


class _ClosingSentinelPool(SentinelConnectionPool):
    """Closes the clients of its Sentinels with its own connections."""

    async def aclose(self) -> None:
        await super().aclose()
        await self.sentinel_manager.aclose()


class SentinelGroup(ReplicaSet):
    """A master, ``replicas`` replicas (default 2) and ``sentinels`` Sentinels (default 3,
    quorum 2) watching them as ``master_name``.

    The Sentinels consider the master down after ``down_after_ms`` (default 1,000 ms) without
    an answer, so a master killed with :meth:`kill_master` is replaced within a few seconds
    (:meth:`wait_failover`). ``password`` protects the data nodes (Sentinel is told it with
    ``sentinel auth-pass``), ``sentinel_password`` the Sentinels themselves (``requirepass``,
    and ``sentinel sentinel-pass`` between them). ``start()`` returns once every Sentinel
    knows the master, every replica and every other Sentinel, so a failover can be authorised
    at once.
    """

    def __init__(
        self,
        replicas: int = 2,
        sentinels: int = 3,
        *,
        quorum: int = 2,
        master_name: str = "rs-master",
        binary: str | None = None,
        password: str | None = None,
        sentinel_password: str | None = None,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
    ) -> None:
        super().__init__(replicas, binary=binary, password=password)
        if not 1 <= quorum <= sentinels:
            raise ConfigurationError(f"quorum must be 1..{sentinels}, got {quorum}")
        self.master_name = master_name
        self.quorum = quorum
        self.sentinel_password = sentinel_password
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.sentinels = [
            ServerProcess(self.binary, [], sentinel=True, password=sentinel_password)
            for _ in range(sentinels)
        ]

    @property
    def sentinel_nodes(self) -> list[str]:
        """The Sentinels as ``host:port`` (what ``redis.sentinel.nodes`` takes)."""
        return [s.name for s in self.sentinels]

    def settings(self) -> dict[str, Any]:
        """The starter's ``redis.sentinel`` section for this group."""
        section: dict[str, Any] = {"nodes": self.sentinel_nodes, "master_name": self.master_name}
        if self.password:
            section["password"] = self.password
        if self.sentinel_password:
            section["sentinel_password"] = self.sentinel_password
        return section

    def client(self, **kwargs: Any) -> Any:
        """A ``redis.asyncio`` client of the current master, managed by the Sentinels (it
        follows a failover); ``aclose()`` closes its connections to the Sentinels too.
        ``kwargs`` go to ``master_for``."""
        from redis.asyncio.sentinel import Sentinel

        sentinel = Sentinel(
            [s.address for s in self.sentinels],
            sentinel_kwargs={"password": self.sentinel_password, "socket_timeout": 1.0},
            password=self.password,
            socket_timeout=5.0,
        )
        return sentinel.master_for(
            self.master_name, connection_pool_class=_ClosingSentinelPool, **kwargs
        )

    def _sentinel_config(self) -> list[str]:
        name = self.master_name
        lines = [
            "loglevel notice",
            f"sentinel monitor {name} {HOST} {self.master.port} {self.quorum}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} {max(1, len(self.replicas))}",
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {name} {self.password}")
        if self.sentinel_password:
            lines += [
                f"requirepass {self.sentinel_password}",
                f"sentinel sentinel-pass {self.sentinel_password}",
            ]
        return lines

    def start(self, timeout_s: float = 30.0) -> SentinelGroup:
        """Start the data nodes and the Sentinels; returns once the Sentinels are ready to fail
        over (each sees the master, its replicas and the other Sentinels)."""
        try:
            super().start(timeout_s)
            for node in self.sentinels:
                node.start(self._sentinel_config())
            wait_until(self._watching, timeout_s, self._describe)
        except BaseException:
            self.close()
            raise
        return self

    def _master_state(self, sentinel: ServerProcess) -> dict[str, Any]:
        client = sentinel.client()
        try:
            return dict(client.sentinel_master(self.master_name))
        finally:
            client.close()

    def _watching(self) -> bool:
        for sentinel in self.sentinels:
            try:
                state = self._master_state(sentinel)
            except redis.RedisError:
                return False
            if (
                not state.get("is_master")
                or state.get("is_sdown")
                or int(state.get("num-slaves", 0)) < len(self.replicas)
                or int(state.get("num-other-sentinels", 0)) < len(self.sentinels) - 1
            ):
                return False
        return True

    def _describe(self) -> str:
        return (
            f"{len(self.sentinels)} Sentinels ({', '.join(self.sentinel_nodes)}) watching "
            f"{self.master_name} with {len(self.replicas)} replicas"
        )

    def master_address(self) -> tuple[str, int]:
        """The master's address as the first Sentinel that answers reports it."""
        errors = []
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            client = sentinel.client()
            try:
                host, port = client.sentinel_get_master_addr_by_name(self.master_name)
                return (host.decode() if isinstance(host, bytes) else str(host)), int(port)
            except (redis.RedisError, TypeError) as exc:
                errors.append(f"{sentinel.name}: {exc}")
            finally:
                client.close()
        raise ConfigurationError(f"no Sentinel reports a master: {errors}")

    def master_node(self) -> ServerProcess:
        """The data node the Sentinels report as the master."""
        _, port = self.master_address()
        return next(n for n in self.nodes if n.port == port)

    def current_replicas(self) -> list[ServerProcess]:
        """Every data node but the one the Sentinels report as the master."""
        master = self.master_node()
        return [n for n in self.nodes if n is not master]

    def kill_master(self) -> ServerProcess:
        """SIGKILL the current master (as a crash would); returns its node."""
        node = self.master_node()
        node.kill()
        return node

    def wait_failover(
        self, previous: ServerProcess, *, replicas: int = 0, timeout_s: float = 30.0
    ) -> ServerProcess:
        """Wait until every running Sentinel reports a master other than ``previous`` and
        that node answers as a master with at least ``replicas`` replicas in sync; returns it.
        """
        found: list[ServerProcess] = []

        def promoted() -> bool:
            ports = set()
            for sentinel in self.sentinels:
                if not sentinel.running:
                    continue
                client = sentinel.client()
                try:
                    reply = client.sentinel_get_master_addr_by_name(self.master_name)
                except redis.RedisError:
                    return False
                finally:
                    client.close()
                if not reply:
                    return False
                ports.add(int(reply[1]))
            if len(ports) != 1 or previous.port in ports:
                return False
            node = next(n for n in self.nodes if n.port in ports)
            if not node.running or role(node) != "master":
                return False
            if connected_replicas(node) < replicas:
                return False
            found[:] = [node]
            return True

        wait_until(
            promoted,
            timeout_s,
            lambda: f"a master other than {previous.name} with {replicas} replicas in sync",
        )
        return found[0]

    def restart(self, node: ServerProcess) -> ServerProcess:
        """Start a killed data node again, as a replica of the current master (Sentinel
        would turn a returning old master into one anyway); returns once it answers."""
        master = self.master_node()
        return node.start(self.node_config(master if master is not node else None))

    def close(self) -> None:
        """Stop every Sentinel and every data node (by PID), and remove their directories."""
        for node in self.sentinels:
            node.close()
        super().close()

    def __enter__(self) -> SentinelGroup:
        return self.start()
