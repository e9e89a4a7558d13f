import socket

import pytest
import redis

from redis_streaming import ConfigurationError
from redis_streaming.testing import RedisCluster, RedisServer, client_from_url


async def test_three_primaries_share_the_slots_and_close_stops_every_node() -> None:
    with RedisCluster() as cluster:
        assert cluster.url.startswith("redis+cluster://127.0.0.1:")
        assert cluster.slot_ranges() == [(0, 5460), (5461, 10921), (10922, 16383)]
        for port, (first, last) in zip(cluster.ports, cluster.slot_ranges(), strict=True):
            node = redis.Redis(port=port)
            try:
                assert node.execute_command("CLUSTER", "INFO").startswith(b"cluster_state:ok")
                slots = node.execute_command("CLUSTER", "SLOTS")
                mine = [(s, e) for s, e, *nodes in slots if nodes[0][1] == port]
                assert mine == [(first, last)]
            finally:
                node.close()
        client = client_from_url(cluster.url)
        try:
            await client.set("k", "v")  # lands on the node owning slot 7629
            assert await client.get("k") == b"v"
            assert len(client.get_primaries()) == 3
        finally:
            await client.aclose()
        ports = cluster.ports
    for port in ports:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"node {port} still listens"


def test_a_cluster_needs_a_primary() -> None:
    with pytest.raises(ConfigurationError, match="at least one primary"):
        RedisCluster(masters=0)


def test_a_node_port_taken_meanwhile_moves_the_cluster_to_new_ports() -> None:
    cluster = RedisCluster()
    squatter = RedisServer(port=cluster.ports[1]).start()  # takes a port before its node does
    try:
        with cluster:
            assert squatter.port not in cluster.ports
            client = redis.Redis(port=cluster.ports[0])
            try:
                assert client.cluster("info")["cluster_state"] == "ok"
            finally:
                client.close()
    finally:
        squatter.close()
