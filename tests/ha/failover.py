"""The failover scenario of tests/ha: a consumer application (the starter, in this process) and
a producer run against a SentinelGroup while its master is killed with SIGKILL; afterwards,
every acknowledged send is compared with what the listener handled."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from redis_streaming import DurabilityError, Producer, RedisStreamingError
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.scripts import script
from redis_streaming.testing import SentinelGroup
from redis_streaming_starter import RedisStreamingApplication, Settings, resolve
from tests.ha import failover_app
from tests.helpers import APP_SHUTDOWN_TIMEOUT_S, FAST, wait_until

log = logging.getLogger(__name__)
TOPIC = "ha-orders"
PARTITIONS = 4


@dataclass
class Outcome:
    """What one failover run saw."""

    acked: set[int] = field(default_factory=set)  # sends that returned
    failed: int = 0  # sends that raised (not acknowledged: never counted as lost)
    durability_errors: int = 0
    acked_after_failover: int = 0
    lost: set[int] = field(default_factory=set)  # acknowledged, never handled
    missing: set[int] = field(default_factory=set)  # acknowledged, not in the topic afterwards
    failover_s: float = 0.0
    scripts_on_new_master: bool = False  # lease and heartbeat scripts (a promoted replica
    # has none: Redis does not replicate SCRIPT LOAD)
    consumer_healthy: bool = False  # its coordination rounds succeed on the new master
    old_master: str = ""
    new_master: str = ""
    health: dict[str, Any] = field(default_factory=dict)


def app_settings(group: SentinelGroup, namespace: str, durability: str) -> Settings:
    return Settings.model_validate(
        {
            "app": {"name": "ha"},
            "redis": {"sentinel": group.settings(), "socket_timeout_s": 3.0},
            "mq": {
                "namespace": namespace,
                **FAST["mq"],
                "shutdown_timeout_s": APP_SHUTDOWN_TIMEOUT_S,
                "default_partitions": PARTITIONS,
                "durability": durability,
                "durability_timeout_ms": 500,
            },
            "actuator": {"show_details": "always"},
        }
    )


class Sender:
    """Sends ``{"n": n}`` with n = 0, 1, 2, ... as fast as the producer returns; a send that
    raises is not acknowledged (and its number is not sent again)."""

    def __init__(self, producer: Producer, outcome: Outcome) -> None:
        self.producer = producer
        self.outcome = outcome
        self.next = 0
        self.stopping = False

    async def run(self, concurrency: int = 1) -> None:
        """``concurrency`` sends in flight at once (each waits for its reply)."""
        await asyncio.gather(*(self._loop() for _ in range(concurrency)))

    async def _loop(self) -> None:
        while not self.stopping:
            n, self.next = self.next, self.next + 1
            try:
                await self.producer.send(TOPIC, {"n": n}, key=str(n % 16))
            except DurabilityError:
                self.outcome.failed += 1
                self.outcome.durability_errors += 1
            except (RedisStreamingError, ConnectionError):
                self.outcome.failed += 1
                await asyncio.sleep(0.05)  # the master is down: do not spin
            else:
                self.outcome.acked.add(n)


async def run_failover(
    group: SentinelGroup,
    namespace: str,
    durability: str,
    *,
    partition_first: bool = False,
    senders: int = 1,
) -> Outcome:
    """Run the application and a producer, kill the master (after breaking its replication
    links, with ``partition_first``), let Sentinel promote a replica, keep both running until
    the producer has 200 acknowledged sends on the new master, then wait until the listener
    has handled everything there is to handle; returns the outcome. ``senders``: sends in
    flight at once."""
    failover_app.handled.clear()
    outcome = Outcome()
    app = RedisStreamingApplication(
        settings=app_settings(group, namespace, durability),
        listener_packages=["tests.ha.failover_app"],
    )
    async with app.asgi.router.lifespan_context(app.asgi):
        producer: Producer = await resolve(app.container.producer)
        sender = Sender(producer, outcome)
        sending = asyncio.create_task(sender.run(senders))
        try:
            await wait_until(lambda: len(failover_app.handled) >= 300, 20, "300 handled")
            old = group.master_node()
            outcome.old_master = old.name
            if partition_first:
                await _partition(group, outcome)
            await asyncio.to_thread(old.kill)
            if partition_first:
                await asyncio.to_thread(group.heal_replication)
            started = time.monotonic()
            new = await asyncio.to_thread(group.wait_failover, old, replicas=1)
            outcome.failover_s = time.monotonic() - started
            outcome.new_master = new.name
            before = len(outcome.acked)
            await wait_until(lambda: len(outcome.acked) >= before + 200, 30, "200 more sends")
            # Past two lease TTLs: the listener's partitions are owned through renewals made on
            # the new master (its coordinator recovered), not through leases held from before.
            lease_ttl_s = float(FAST["mq"]["lease_ttl_s"])
            await wait_until(
                lambda: time.monotonic() - started > outcome.failover_s + 2 * lease_ttl_s,
                30,
                "two lease TTLs after the failover",
            )
            outcome.acked_after_failover = len(outcome.acked) - before
        finally:
            sender.stopping = True
            await sending
        await _settle(outcome)
        assert app.consumer is not None
        outcome.consumer_healthy = app.consumer.healthy
        outcome.health = await _health(app)
        outcome.missing = outcome.acked - await _in_topic(app.redis, namespace)
        shas = [script("lease_renew").sha, script("heartbeat").sha]
        outcome.scripts_on_new_master = all(await app.redis.script_exists(*shas))
    outcome.lost = outcome.acked - failover_app.handled
    log.warning(
        "failover with durability %s%s: %d acknowledged, %d not in the topic afterwards, %d "
        "never handled, %d sends failed (%d DurabilityError), failover in %.1fs",
        durability, " after a partition" if partition_first else "", len(outcome.acked),
        len(outcome.missing), len(outcome.lost), outcome.failed, outcome.durability_errors,
        outcome.failover_s,
    )  # fmt: skip
    return outcome


async def _partition(group: SentinelGroup, outcome: Outcome) -> None:
    """Cut the master off from its replicas (``SentinelGroup.cut_replication``) and let the
    producer make 50 more sends, which reach no replica."""
    await asyncio.to_thread(group.cut_replication)
    acked, errors = len(outcome.acked), outcome.durability_errors
    await wait_until(
        lambda: len(outcome.acked) >= acked + 50 or outcome.durability_errors >= errors + 3,
        10,
        "50 acknowledged sends or 3 DurabilityErrors",
    )


async def _settle(outcome: Outcome) -> None:
    """Wait until every acknowledged send is handled, or until nothing more is handled for
    3 s (what is left then is lost)."""
    last, quiet_since = -1, time.monotonic()
    while not outcome.acked <= failover_app.handled:
        if len(failover_app.handled) != last:
            last, quiet_since = len(failover_app.handled), time.monotonic()
        elif time.monotonic() - quiet_since > 3.0:
            return
        await asyncio.sleep(0.05)


async def _in_topic(redis: Any, namespace: str) -> set[int]:
    """The numbers of the messages in the topic's partitions (on the current master)."""
    keys = Keys(namespace)
    found: set[int] = set()
    for p in range(PARTITIONS):
        for _, fields in await redis.xrange(keys.stream(TOPIC, p)):
            found.add(int(json.loads(fields[b"payload"])["n"]))
    return found


async def _health(app: RedisStreamingApplication) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        with contextlib.suppress(httpx.HTTPError):
            body = (await http.get("/actuator/health/redis")).json()
            return dict(body)
    return {}
