"""A Redis Cluster primary killed -9 under load: its replica takes over, the application and the
producer go on by themselves, every partition is consumed again; partitions on the other
primaries keep their leases meanwhile; a cluster failing over is ``RedisUnavailable`` to a
sender; and what asynchronous replication lost is measured."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from redis_streaming import (
    Consumer,
    Keys,
    Message,
    MQOptions,
    Producer,
    RedisStreamingError,
    RedisUnavailable,
)
from redis_streaming.mq.consume.leases import Leases
from redis_streaming.mq.scripts import script
from redis_streaming.mq.topics import TopicStore
from redis_streaming.testing import RedisCluster, client_from_url
from redis_streaming_starter import RedisStreamingApplication, resolve
from redis_streaming_starter.testing import app_test
from tests.ha import ticks_app
from tests.helpers import fast_mq, wait_until

PARTITIONS = 12
APP = "failover-app"
QUICK_RETRY = Retry(ExponentialBackoff(cap=1.0, base=0.05), 2)  # as the starter's client

# A durability level is one line: its name and the `mq` settings that select it. Every level
# but "leader" must lose nothing.
DURABILITY: dict[str, dict[str, Any]] = {
    "leader": {},
    "replicas=1": {"durability": "replicas=1"},
}


class Senders:
    """One task per partition sending numbered messages, each retried after a
    ``RedisStreamingError`` until Redis acknowledges it (what a careful caller does)."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.acked: dict[int, int] = {}  # payload -> partition, once Redis acknowledged it
        self.unavailable = 0  # RedisStreamingError raised by send (then retried)
        self.other_errors: list[BaseException] = []  # anything else: must stay empty
        self._numbers = itertools.count()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._send(p)) for p in range(PARTITIONS)]

    async def _send(self, partition: int) -> None:
        while not self._stop.is_set():
            n = next(self._numbers)
            while not self._stop.is_set():
                try:
                    await self.producer.send("ticks", n, partition=partition)
                except RedisStreamingError:
                    self.unavailable += 1
                    await asyncio.sleep(0.05)
                    continue
                except Exception as exc:
                    self.other_errors.append(exc)
                    await asyncio.sleep(0.05)
                    continue
                self.acked[n] = partition
                break
            await asyncio.sleep(0.005)

    def mark(self) -> int:
        """A number above every payload sent so far."""
        return next(self._numbers)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


def app_clients(port: int) -> set[str]:
    """Ids of the application's connections to the node on ``port``."""
    with redis.Redis(port=port, decode_responses=True) as node:
        return {c["id"] for c in node.client_list() if c.get("name") == APP}


def has_script(port: int, name: str) -> bool:
    with redis.Redis(port=port) as node:
        return bool(node.script_exists(script(name).sha)[0])


@pytest.mark.parametrize("durability", list(DURABILITY))
async def test_a_primary_killed_9_fails_over_and_every_partition_is_consumed_again(
    rs_cluster_replicas: RedisCluster, durability: str, request: pytest.FixtureRequest
) -> None:
    cluster = rs_cluster_replicas
    ticks_app.handled.clear()
    app = RedisStreamingApplication(listener_packages=["tests.ha.ticks_app"])
    settings = {
        "app": {"name": APP},
        "mq": {"default_partitions": PARTITIONS, **DURABILITY[durability]},
    }
    async with app_test(app, url=cluster.url, settings=settings) as t:
        handled = ticks_app.handled
        keys = Keys(t.namespace)
        senders = Senders(await resolve(t.container.producer))
        senders.start()
        try:
            await wait_until(
                # (a message can be handled before its send returns: WAIT comes after XADD)
                lambda: (
                    {senders.acked[n] for n in handled if n in senders.acked}
                    == set(range(PARTITIONS))
                ),
                20,
                "every partition consumed",
            )
            victim = cluster.primary_of(keys.stream("ticks", 0))
            [replica] = cluster.replicas_of(victim)
            on_victim = {
                p
                for p in range(PARTITIONS)
                if cluster.primary_of(keys.stream("ticks", p)) is victim
            }
            healthy = [n.port for n in cluster.primaries() if n is not victim]
            # Script caches are not replicated: the promoted replica answers NOSCRIPT at first.
            assert not has_script(replica.port, "lease_renew")
            connections = {port: app_clients(port) for port in healthy}

            cluster.kill_master(victim)
            killed_at, killed_s = senders.mark(), time.monotonic()
            await asyncio.to_thread(cluster.wait_failover)
            failover_s = time.monotonic() - killed_s  # reported, never asserted
            if durability != "leader":
                # The promoted replica has no replica of its own until the crashed node is
                # back (it rejoins as one): until then WAIT 1 cannot succeed and its sends
                # raise DurabilityError, as they should. An operator restarts it; so do we.
                await asyncio.to_thread(cluster.heal)
            promoted_at = senders.mark()
            assert cluster.primary_of(keys.stream("ticks", 0)) is replica

            def handled_between(first: int, last: int | None = None) -> set[int]:
                return {
                    senders.acked[n]
                    for n in handled
                    if first <= n and (last is None or n < last) and n in senders.acked
                }

            await wait_until(
                lambda: handled_between(promoted_at) == set(range(PARTITIONS)),
                30,
                "every partition consumed after the failover",
            )
        finally:
            await senders.stop()
        # Partitions of the healthy primaries were consumed while the failed one was down.
        assert set(range(PARTITIONS)) - on_victim <= handled_between(killed_at, promoted_at)
        # Whatever the failover did, the producer raised RedisUnavailable and nothing else.
        assert senders.other_errors == []
        # The application reloaded its scripts on the promoted replica (NOSCRIPT), and kept
        # its connections to the primaries that did not fail.
        await wait_until(lambda: has_script(replica.port, "lease_renew"), 10, "lease_renew loaded")
        for port, before in connections.items():
            assert before & app_clients(port), f"every connection to {port} was replaced"

        acked = set(senders.acked)
        with contextlib.suppress(AssertionError):  # lost by asynchronous replication: counted
            await wait_until(lambda: acked <= handled.keys(), 10, "every acknowledged send")
        lost = acked - handled.keys()
        measured = {
            "acknowledged": len(acked),
            "lost": len(lost),
            "retried": senders.unavailable,
            "failover_s": round(failover_s, 1),
        }
        request.node.user_properties.extend(measured.items())  # reported by -rP and --junitxml
        print(f"failover with durability {durability}: {measured}")
        if durability != "leader":
            assert lost == set()


@pytest.fixture
async def slow_cluster() -> AsyncIterator[RedisCluster]:
    """Three primaries that notice a failed node only after a minute: no failover, no
    CLUSTERDOWN, while the test runs."""
    cluster = await asyncio.to_thread(RedisCluster(node_timeout_ms=60_000).start)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.close)


async def test_leases_on_the_other_primaries_are_renewed_while_one_primary_is_down(
    slow_cluster: RedisCluster, rs_namespace: str
) -> None:
    client = await client_from_url(slow_cluster.url, retry=QUICK_RETRY).initialize()
    try:
        keys = Keys(rs_namespace)
        leases = Leases(client, keys, "t", "g", "c1", ttl_s=30.0)
        assert await leases.acquire(range(PARTITIONS)) == set(range(PARTITIONS))
        victim = slow_cluster.primary_of(keys.lease("t", 0, "g"))
        down = {
            p
            for p in range(PARTITIONS)
            if slow_cluster.primary_of(keys.lease("t", p, "g")) is victim
        }
        assert 0 < len(down) < PARTITIONS
        before = {p: leases.valid_until(p) for p in range(PARTITIONS)}
        slow_cluster.kill_master(victim)

        with pytest.raises(redis.ConnectionError, match=f":{victim.port}"):
            await leases.renew(range(PARTITIONS))

        for p in range(PARTITIONS):
            if p in down:  # not renewed, not lost: its deadline stands
                assert leases.valid_until(p) == before[p]
            else:
                assert leases.valid_until(p) > before[p], f"partition {p} not renewed"
    finally:
        await client.aclose()


async def test_scripts_are_reloaded_on_their_node_while_another_primary_is_down(
    slow_cluster: RedisCluster, rs_namespace: str
) -> None:
    """A promoted replica has no scripts (caches are not replicated): the NOSCRIPT reload
    loads them on that node only, as loading on every primary fails while one is down."""
    client = await client_from_url(slow_cluster.url, retry=QUICK_RETRY).initialize()
    try:
        keys = Keys(rs_namespace)
        down, fresh, _ = slow_cluster.primaries()
        on_fresh = [
            p
            for p in range(PARTITIONS)
            if slow_cluster.primary_of(keys.lease("t", p, "g")) is fresh
        ]
        slow_cluster.kill_master(down)
        with redis.Redis(port=fresh.port) as node:
            node.script_flush()
        leases = Leases(client, keys, "t", "g", "c1", ttl_s=30.0)
        assert await leases.acquire(on_fresh) == set(on_fresh)  # pipelined: NOSCRIPT, reload
        assert has_script(fresh.port, "lease_acquire")
    finally:
        await client.aclose()


async def test_a_cluster_with_slots_no_node_serves_is_unavailable_to_a_sender(
    rs_namespace: str,
) -> None:
    """Between a primary's failure and its replica's promotion every node answers CLUSTERDOWN,
    and redis-py's refreshed slot map has holes: the sender gets ``RedisUnavailable`` (retry
    later), not a redis-py exception. Made here by taking a slot away from a one-node cluster."""
    with RedisCluster(masters=1) as cluster:
        client = await client_from_url(cluster.url, retry=QUICK_RETRY).initialize()
        try:
            producer = Producer(client, MQOptions(namespace=rs_namespace))
            await producer.send("t", 1)
            with redis.Redis(port=cluster.ports[0]) as node:
                node.execute_command("CLUSTER", "DELSLOTS", 0)
            with pytest.raises(RedisUnavailable, match="failing over"):
                await producer.send("t", 2)
        finally:
            await client.aclose()


async def test_a_worker_whose_lease_ran_out_stops_its_retry_mover(
    rs_redis: Any, rs_namespace: str
) -> None:
    """A partition whose node stays unreachable for longer than the lease (a primary failing
    over) loses its worker; the worker's retry mover must not run on, forgotten."""
    options = fast_mq(rs_namespace)
    await TopicStore(rs_redis, options).create("t", 1)

    async def handle(message: Message) -> None:
        pass

    consumer = Consumer(rs_redis, options, consumer_id="c1")
    consumer.subscribe("t", handle, group="g")
    async with consumer:
        coordinator = consumer._coordinators[("t", "g")]
        await wait_until(lambda: 0 in coordinator.workers, 10, "partition 0 owned")
        first = coordinator.workers[0]
        assert first.mover.running
        coordinator.leases.forget(0)  # as if the renewals had failed until the deadline
        await wait_until(lambda: coordinator.workers.get(0) not in (None, first), 10, "taken again")
        await wait_until(lambda: not first.mover.running, 5, "the first worker's mover stopped")
