"""Redis Cluster specifics, against the suite's local three-primary cluster: where keys land,
one slot per script, script reloads per node, reads routed without COMMAND GETKEYS, admin and
registry across nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as ClusterClient
from redis.cluster import key_slot

from redis_streaming import (
    Admin,
    Consumer,
    DeadLetter,
    DeadLetters,
    Keys,
    Message,
    MQOptions,
    Producer,
    ProducerRecord,
)
from redis_streaming.cluster import ready
from redis_streaming.mq.consume._membership import Membership
from redis_streaming.mq.consume.leases import Leases
from redis_streaming.mq.topics import TopicStore
from redis_streaming.registry import RegistryKeys, ServiceDiscovery, ServiceRegistry
from redis_streaming.testing import client_from_url
from tests.helpers import fast_mq, fast_registry, moved_replies, wait_until
from tests.registry.support import events_until_quiet, inst, next_event, summary


@pytest.fixture
async def cluster(rs_cluster_url: str) -> AsyncIterator[Any]:
    client = client_from_url(rs_cluster_url)
    await client.initialize()
    try:
        yield client
    finally:
        await client.aclose()


async def keys_by_node(cluster: Any, namespace: str) -> dict[str, set[str]]:
    """Every key of the namespace, read from each primary with a plain client."""
    out: dict[str, set[str]] = {}
    for node in cluster.get_primaries():
        plain = aioredis.Redis(host=node.host, port=node.port)
        try:
            out[node.name] = {k.decode() async for k in plain.scan_iter(match=f"{namespace}:*")}
        finally:
            await plain.aclose()
    return out


def test_every_script_keeps_its_keys_in_one_slot() -> None:
    """The KEYS each script is called with (as the code builds them) share one hash slot, and
    every script file is listed here, so a new script has to be checked too."""
    k, r = Keys("rs"), RegistryKeys("rs")
    calls = {
        "mq/alter_topic": [k.topic("T")],
        "mq/count_after": [k.stream("T", 3)],
        "mq/create_topic": [k.topic("T")],
        "mq/delete_consumers": [k.stream("T", 3)],
        "mq/delete_consumers (redelivery)": [k.redeliver("T", 3, "G")],
        "mq/dlq_page": [k.dlq("T")],
        "mq/heartbeat": [k.members("T", "G")],
        "mq/lease_acquire": [k.lease("T", 3, "G")],
        "mq/lease_release": [k.lease("T", 3, "G")],
        "mq/lease_renew": [k.lease("T", 3, "G")],
        "mq/move_due_members": [k.delayed("T", 3), k.stream("T", 3)],
        "mq/move_due_members (retries)": [k.retry("T", 3, "G"), k.redeliver("T", 3, "G")],
        "mq/schedule_delayed": [k.delayed("T", 3)],
        "mq/schedule_retry": [k.retry("T", 3, "G"), k.stream("T", 3), k.redeliver("T", 3, "G")],
        "mq/schedule_retry (redelivered)": [k.retry("T", 3, "G"), *[k.redeliver("T", 3, "G")] * 2],
        "mq/trim_stream": [k.stream("T", 3)],
        "mq/trim_stream (dlq)": [k.dlq("T")],
        "registry/deregister": [r.instances("S"), r.instance("S", "i")],
        "registry/expired": [r.instances("S")],
        "registry/live": [r.instances("S")],
        "registry/register": [r.instances("S"), r.instance("S", "i")],
        "registry/sweep": [r.instances("S"), r.instance("S", "i"), r.instance("S", "j")],
        "registry/update": [r.instances("S"), r.instance("S", "i")],
    }
    for name, keys in calls.items():
        assert len({key_slot(key.encode()) for key in keys}) == 1, name
    # Single server only: a delayed mover on a cluster client reads the sets one by one.
    calls["mq/earliest_due"] = []
    files = {
        f"{package}/{f.name.removesuffix('.lua')}"
        for package in ("mq", "registry")
        for f in resources.files(f"redis_streaming.{package}").joinpath("scripts").iterdir()
        if f.name.endswith(".lua")
    }
    assert files == {name.split(" ")[0] for name in calls}
    # Partitions of one topic are in different slots; the topic-wide keys share another.
    assert len({key_slot(k.stream("T", i).encode()) for i in range(12)}) == 12
    assert key_slot(k.dlq("T").encode()) == key_slot(k.topic("T").encode())


async def test_a_12_partition_topic_spreads_over_all_nodes_and_admin_works_across_them(
    cluster: Any, rs_namespace: str, fast_options: MQOptions
) -> None:
    keys = Keys(rs_namespace)
    await TopicStore(cluster, fast_options).create("orders", 12)
    producer = Producer(cluster, fast_options)
    total = 1200
    await producer.send_many(
        "orders", [ProducerRecord(n, key=f"k{n % 97}") for n in range(total)]
    )  # one pipeline, split per node by the cluster client
    seen: list[int] = []

    async def handle(message: Message) -> None:
        if message.payload == 7:
            raise DeadLetter("seven")
        seen.append(message.payload)

    consumer = Consumer(cluster, fast_options, consumer_id="c1")
    consumer.subscribe("orders", handle, group="g")
    async with consumer:
        await wait_until(lambda: len(seen) == total - 1, 30, "every message handled")
    assert sorted(seen) == [n for n in range(total) if n != 7]

    by_node = await keys_by_node(cluster, rs_namespace)
    node_of = {key: node for node, ks in by_node.items() for key in ks}
    streams = {node_of[keys.stream("orders", i)] for i in range(12)}
    assert streams == set(by_node), "the partition streams are on every primary"
    for i in range(12):  # a partition's keys are on one node
        mine = [key for key in node_of if keys.is_topic_key("orders", key) and f":{i}}}" in key]
        assert keys.redeliver("orders", i, "g") in mine
        assert {node_of[key] for key in mine} == {node_of[keys.stream("orders", i)]}
    assert node_of[keys.dlq("orders")] == node_of[keys.topic("orders")]

    info = await Admin(cluster, fast_options).describe_topic("orders")
    assert [p.partition for p in info.partitions] == list(range(12))
    assert sum(p.length for p in info.partitions) == total
    assert info.dlq_length == 1
    for p in info.partitions:
        [group] = p.groups
        assert (group.name, group.pending, group.lag) == ("g", 0, 0)
    [dead] = await DeadLetters(cluster, fast_options).list("orders")
    assert (dead.reason, dead.group) == ("rejected", "g")

    deleted = await Admin(cluster, fast_options).delete_topic("orders")
    left = await keys_by_node(cluster, rs_namespace)
    assert {k for ks in left.values() for k in ks} == set()
    assert deleted == len(node_of) - 1  # every key but the topic set, which is emptied


async def test_scripts_are_reloaded_where_they_were_lost(
    cluster: Any, rs_namespace: str, fast_options: MQOptions
) -> None:
    await cluster.execute_command("SCRIPT FLUSH", target_nodes=ClusterClient.PRIMARIES)
    keys = Keys(rs_namespace)
    members = await Membership(cluster, keys, "t", "g", "c1", 3.0).heartbeat()  # run by SHA
    assert members == ["c1"]
    await cluster.execute_command("SCRIPT FLUSH", target_nodes=ClusterClient.PRIMARIES)
    leases = Leases(cluster, keys, "t", "g", "c1", 3.0)
    assert await leases.acquire(range(12)) == set(range(12))  # pipelined over every node
    await cluster.execute_command("SCRIPT FLUSH", target_nodes=ClusterClient.PRIMARIES)
    result = await Producer(cluster, fast_options).send("t", "later", partition=5, delay=60)
    assert result.due_ms is not None
    assert await cluster.zcard(keys.delayed("t", 5)) == 1


async def _getkeys_calls(cluster: Any) -> int:
    stats = await cluster.info("commandstats", target_nodes=ClusterClient.PRIMARIES)
    return sum(
        int(node.get("cmdstat_command|getkeys", {}).get("calls", 0)) for node in stats.values()
    )


async def test_reads_go_to_the_partition_node_without_asking_for_keys(
    cluster: Any, rs_namespace: str
) -> None:
    options = fast_mq(rs_namespace, batch_size=10)
    await TopicStore(cluster, options).create("r", 3)
    got: list[int] = []

    async def handle(message: Message) -> None:
        got.append(message.payload)

    consumer = Consumer(cluster, options, consumer_id="c1")
    consumer.subscribe("r", handle, group="g")
    async with consumer:
        await wait_until(lambda: len(consumer.subscription("r", "g").owned_partitions) == 3)
        before = await _getkeys_calls(cluster)
        await Producer(cluster, options).send_many("r", list(range(300)))
        await wait_until(lambda: len(got) == 300, 20, "300 handled")
        # XREADGROUP has movable keys: without routing, redis-py's cluster client would send
        # COMMAND GETKEYS before each of the (at least 30) reads.
        assert await _getkeys_calls(cluster) - before < 5


async def test_watch_resubscribes_after_its_connection_is_killed(
    cluster: Any, rs_namespace: str
) -> None:
    opts = fast_registry(rs_namespace, ttl_s=30.0)
    registry, discovery = ServiceRegistry(cluster, opts), ServiceDiscovery(cluster, opts)
    a, b = inst("a", 8001), inst("b", 8002)
    await registry.register(a)
    async with discovery.watch("orders") as watch:
        await registry.register(b)
        assert summary(await events_until_quiet(watch, 0.3)) == [("ADDED", "b")]
        await cluster.execute_command(
            "CLIENT KILL", "TYPE", "pubsub", target_nodes=ClusterClient.PRIMARIES
        )
        await registry.deregister(a)  # published while the watch may be reconnecting
        events = [await next_event(watch), *await events_until_quiet(watch)]
        # Whether the event arrived or the resync found the change, it is reported once.
        assert summary(events) == [("REMOVED", "a")]
        assert watch.reconnects >= 1


async def _blocked_xread_ids(node: Any) -> set[str]:
    plain = aioredis.Redis(host=node.host, port=node.port, decode_responses=True)
    try:
        clients = await plain.client_list()
    finally:
        await plain.aclose()
    return {c["id"] for c in clients if c.get("cmd") == "xread" and "b" in c.get("flags", "")}


async def test_moved_replies_do_not_cut_the_reads_other_tasks_have_in_flight(
    rs_cluster_url: str, rs_namespace: str
) -> None:
    """redis-py's default closes every connection of the client on each fifth MOVED (to reload
    the slot map), which would break the blocking reads of every worker; the framework's client
    moves just the slot (redis_streaming.cluster.CLIENT_DEFAULTS)."""
    client = await ready(client_from_url(rs_cluster_url))
    try:
        key = f"{rs_namespace}:moved:{{a}}"
        owner = client.get_node_from_key(key)
        reader = asyncio.create_task(client.xread({key: "$"}, block=10_000))
        await wait_until(lambda: _blocked_xread_ids(owner), 5, "the read blocks")
        blocked = await _blocked_xread_ids(owner)
        wrong = next(n for n in client.get_primaries() if n.name != owner.name)
        for n in range(12):  # each is answered MOVED by the wrong node, then followed
            other = f"{rs_namespace}:moved:{{{n}}}"
            if client.get_node_from_key(other).name != wrong.name:
                await client.execute_command("GET", other, target_nodes=wrong)
        assert await _blocked_xread_ids(owner) == blocked  # the same connection still waits
        await client.xadd(key, {"f": "v"})
        [(_, [(_, fields)])] = await asyncio.wait_for(reader, 5)
        assert fields == {b"f": b"v"}
    finally:
        await client.aclose()


async def test_a_fresh_cluster_client_shared_at_once_sends_each_command_to_its_node(
    rs_cluster_url: str,
) -> None:
    """redis-py decides a command's node before loading the slot map: on a fresh client,
    commands sent by many tasks at once go to random nodes. ``ready`` loads the map first."""
    before = await moved_replies(rs_cluster_url)
    client = await ready(client_from_url(rs_cluster_url))
    try:
        await asyncio.gather(*(client.hgetall(f"fresh:{{{n}}}") for n in range(60)))
        assert await moved_replies(rs_cluster_url) == before
    finally:
        await client.aclose()
