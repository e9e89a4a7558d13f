"""redis_streaming.testing.RedisCluster with replicas: every primary gets its replica, a primary
killed -9 is replaced by its replica, ``heal`` brings the killed node back as a replica, and
``close`` ends every process the cluster started."""

from __future__ import annotations

import os

import pytest
import redis

from redis_streaming import ConfigurationError
from redis_streaming.testing import RedisCluster


def role(port: int) -> str:
    with redis.Redis(port=port) as node:
        return str(node.info("replication")["role"])


def test_each_primary_has_a_replica_that_takes_over_when_it_is_killed(
    rs_cluster_replicas: RedisCluster,
) -> None:
    cluster = rs_cluster_replicas
    assert (cluster.masters, cluster.replicas, len(cluster.nodes)) == (3, 1, 6)
    primaries = cluster.primaries()
    replicas = {p.port: cluster.replicas_of(p) for p in primaries}
    assert all(len(r) == 1 for r in replicas.values())
    nodes = [n.port for n in primaries] + [r[0].port for r in replicas.values()]
    assert sorted(nodes) == sorted(cluster.ports)
    assert [role(p.port) for p in primaries] == ["master"] * 3

    victim = cluster.primary_of(0)
    [heir] = replicas[victim.port]
    assert cluster.kill_master(0) is victim
    assert not victim.running
    assert cluster.wait_failover()[0] is heir  # the replica serves slot 0 now
    assert cluster.primary_of("{a}") is cluster.primary_of(15495)  # a key, or its slot
    with pytest.raises(ConfigurationError, match="not a running node"):
        cluster.kill_master(victim)

    cluster.heal()
    assert victim.running
    assert cluster.replicas_of(heir) == [victim]
    assert role(victim.port) == "slave"


def test_close_stops_every_node_it_started_killed_or_not() -> None:
    with RedisCluster(masters=1, replicas=1) as cluster:
        pids = [n.process.pid for n in cluster.nodes if n.process is not None]
        assert len(pids) == 2
        cluster.kill_master(0)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least one primary"):
        RedisCluster(masters=0)
    with pytest.raises(ConfigurationError, match="0 or more"):
        RedisCluster(replicas=-1)
    with pytest.raises(ValueError, match="no such slot"):
        RedisCluster().primary_of(16384)
