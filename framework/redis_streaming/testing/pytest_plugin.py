"""pytest fixtures: a real server per session, a client and a fresh namespace per test.

Fixtures:

- ``rs_server_url`` (session): ``REDIS_URL`` when set, else the URL of a private server started
  for the session and always stopped afterwards, also when tests fail.
- ``rs_cluster_url`` (session): ``REDIS_CLUSTER_URL`` when set (a ``redis+cluster://`` URL),
  else the URL of a private three-primary cluster started on first use and always stopped
  afterwards.
- ``rs_cluster_replicas``: a private cluster of three primaries with one replica each
  (``cluster-node-timeout`` 2 s, so a replica takes over a few seconds after its primary is
  killed), started on first use and shared by the session, always stopped afterwards; for
  failover tests (``kill_master``, ``wait_failover``). Before each test the killed nodes are
  restarted and rejoin as replicas (``heal``); a cluster whose node does not rejoin in time is
  replaced by a new one. So every test finds every primary with a replica (though not
  necessarily on the same ports). ``rs_cluster_replicas_url`` is its
  ``redis+cluster://`` URL.
- ``rs_backend``: ``"server"``, or ``"cluster"`` in the second run of a test marked
  ``@pytest.mark.cluster`` (such tests run once against each).
- ``rs_url``: the URL of the test's backend (``rs_server_url`` or ``rs_cluster_url``).
- ``rs_namespace``: a namespace unique to the test (keys never collide between tests).
- ``rs_options``: ``MQOptions`` using that namespace.
- ``rs_redis``: a ``redis.asyncio`` client (bytes replies) for the test's backend, closed after
  the test: a ``Redis``, or a ``RedisCluster`` in the cluster run.
- ``rs_server``: a private server for this test alone, for fault injection (stop, restart, kill).
- ``rs_replica_set``: a master and one replica (``ReplicaSet``) for this test alone, stopped
  after it; ``.url`` is the master's.
- ``rs_sentinel``: a master, two replicas and three Sentinels (``SentinelGroup``, quorum 2, a
  failover in about three seconds) for this test alone; every process is stopped after it,
  also when the test fails.
- ``rs_postgres_url`` (session): ``POSTGRES_URL`` when set, else the URL of a private PostgreSQL
  server (``wal_level=logical``, see ``redis_streaming.testing.postgres``) started on first use
  and always stopped afterwards.
- ``rs_pg_database``: the URL of a database created for this test alone on that server, dropped
  after it (with its replication slots; its sessions are terminated). Needs ``psycopg``.
- ``rs_job_test``: ``rs_job_test(job, **options)`` is a :class:`~redis_streaming.testing.JobTest`
  on ``rs_server_url`` (``async with rs_job_test(build_job()) as t:``; docs/testing-jobs.md).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from redis_streaming.cluster import ready
from redis_streaming.embedded import RedisServer
from redis_streaming.errors import ConfigurationError
from redis_streaming.mq.options import MQOptions
from redis_streaming.testing.cluster import RedisCluster, client_from_url
from redis_streaming.testing.jobs import JobTest, job_test
from redis_streaming.testing.postgres import PostgresServer
from redis_streaming.testing.replication import ReplicaSet
from redis_streaming.testing.sentinel import SentinelGroup

BACKENDS = ("server", "cluster")
REPLICAS_NODE_TIMEOUT_MS = 2000


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cluster: run the test against a single server and against a Redis Cluster "
        "(rs_url and rs_redis follow the rs_backend parameter)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rs_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("cluster"):
        metafunc.parametrize("rs_backend", BACKENDS, indirect=True)


def _session_url(
    variable: str, start: Callable[[], RedisServer | RedisCluster | PostgresServer]
) -> Iterator[str]:
    """The URL in ``variable`` if it is set, else that of a server ``start`` starts (and the
    session's end stops)."""
    url = os.environ.get(variable)
    if url:
        yield url
        return
    server = start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="session")
def rs_server_url() -> Iterator[str]:
    yield from _session_url("REDIS_URL", lambda: RedisServer().start())


@pytest.fixture(scope="session")
def rs_cluster_url() -> Iterator[str]:
    yield from _session_url("REDIS_CLUSTER_URL", lambda: RedisCluster().start())


class _ReplicasCluster:
    """The session's cluster with replicas, replaced by a new one when a killed node cannot be
    brought back (a restarted node that does not rejoin in time on a loaded machine)."""

    def __init__(self) -> None:
        self.cluster: RedisCluster | None = None

    def healthy(self) -> RedisCluster:
        if self.cluster is not None:
            try:
                self.cluster.heal()  # a test stopped while the cluster failed over
                return self.cluster
            except ConfigurationError:
                self.cluster.close()
        self.cluster = RedisCluster(replicas=1, node_timeout_ms=REPLICAS_NODE_TIMEOUT_MS).start()
        return self.cluster

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.close()


@pytest.fixture(scope="session")
def _rs_cluster_replicas_session() -> Iterator[_ReplicasCluster]:
    holder = _ReplicasCluster()
    try:
        yield holder
    finally:
        holder.close()


@pytest.fixture
def rs_cluster_replicas(_rs_cluster_replicas_session: _ReplicasCluster) -> RedisCluster:
    return _rs_cluster_replicas_session.healthy()


@pytest.fixture
def rs_cluster_replicas_url(rs_cluster_replicas: RedisCluster) -> str:
    return rs_cluster_replicas.url


@pytest.fixture(scope="session")
def rs_postgres_url() -> Iterator[str]:
    yield from _session_url("POSTGRES_URL", lambda: PostgresServer().start())


@pytest.fixture
def rs_pg_database(rs_postgres_url: str) -> Iterator[str]:
    # psycopg only here: the plugin works without the postgres extra.
    from redis_streaming.testing.pg_database import create_database, drop_database

    name = f"t{uuid.uuid4().hex[:12]}"
    url = create_database(rs_postgres_url, name)
    try:
        yield url
    finally:
        drop_database(rs_postgres_url, name)


@pytest.fixture
def rs_backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "server"))


@pytest.fixture
def rs_url(rs_backend: str, request: pytest.FixtureRequest) -> str:
    name = "rs_cluster_url" if rs_backend == "cluster" else "rs_server_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def rs_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def rs_replica_set() -> Iterator[ReplicaSet]:
    group = ReplicaSet(1).start()
    try:
        yield group
    finally:
        group.close()


@pytest.fixture
def rs_sentinel() -> Iterator[SentinelGroup]:
    group = SentinelGroup().start()
    try:
        yield group
    finally:
        group.close()


@pytest.fixture
def rs_namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def rs_options(rs_namespace: str) -> MQOptions:
    return MQOptions(namespace=rs_namespace)


@pytest.fixture
async def rs_redis(rs_url: str) -> AsyncIterator[Any]:
    client = await ready(client_from_url(rs_url))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def rs_job_test(rs_server_url: str) -> Callable[..., JobTest]:
    return functools.partial(job_test, url=rs_server_url)
