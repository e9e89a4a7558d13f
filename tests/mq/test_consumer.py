import asyncio
import threading
from collections import Counter

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import ExponentialBackoff

from redis_streaming import (
    ConfigurationError,
    Consumer,
    Keys,
    Message,
    Producer,
    SubscriptionState,
    TopicStore,
)
from redis_streaming.testing import RedisServer
from tests.helpers import fast, wait_until


@pytest.mark.cluster
async def test_two_groups_each_receive_every_message_once(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = fast(rs_namespace)
    await TopicStore(rs_redis, options).create("orders", 8)
    seen: dict[str, Counter[int]] = {"billing": Counter(), "shipping": Counter()}
    handled_by: dict[str, set[str]] = {"billing": set(), "shipping": set()}
    consumers = []
    for group in seen:
        for i in range(2):

            async def handle(m: Message, group: str = group, me: str = f"{group}-{i}") -> None:
                seen[group][m.payload["n"]] += 1
                handled_by[group].add(me)

            c = Consumer(rs_redis, options, consumer_id=f"{group}-{i}")
            c.subscribe("orders", handle, group=group)
            consumers.append(c)
    for c in consumers:
        await c.start()
    subs = [c.subscriptions[0] for c in consumers]
    await wait_until(lambda: all(len(s.owned_partitions) == 4 for s in subs), 10, "balance")
    await Producer(rs_redis, options).send_many("orders", [{"n": n} for n in range(2000)])
    await wait_until(lambda: all(sum(s.values()) >= 2000 for s in seen.values()), 20)
    for c in consumers:
        await c.stop()
    for counts in seen.values():
        assert set(counts) == set(range(2000))
        assert set(counts.values()) == {1}
    # work was shared: both members of each group handled messages
    assert handled_by == {g: {f"{g}-0", f"{g}-1"} for g in seen}
    keys = Keys(rs_namespace)
    for p in range(8):
        info = await rs_redis.xinfo_groups(keys.stream("orders", p))
        assert {g["name"].decode() for g in info} == {"billing", "shipping"}
        assert all(g["pending"] == 0 for g in info)


async def test_latest_skips_the_backlog_and_earliest_reads_it(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = fast(rs_namespace)
    producer = Producer(rs_redis, options)
    await TopicStore(rs_redis, options).create("t", 1)
    await producer.send("t", "old")
    got: dict[str, list[str]] = {"early": [], "late": []}
    consumer = Consumer(rs_redis, options)

    async def early(m: Message) -> None:
        got["early"].append(m.payload)

    async def late(m: Message) -> None:
        got["late"].append(m.payload)

    consumer.subscribe("t", early, group="early", start="earliest")
    consumer.subscribe("t", late, group="late", start="latest")
    await consumer.start()
    await wait_until(lambda: got["early"] == ["old"], 5)
    sub = consumer.subscription("t", "late")
    await wait_until(lambda: sub.owned_partitions == [0], 5)
    await asyncio.sleep(0.3)  # let the late group's worker create its group at '$'
    await producer.send("t", "new")
    await wait_until(lambda: got["late"] == ["new"] and got["early"] == ["old", "new"], 5)
    await consumer.stop()


async def test_plain_functions_run_in_a_worker_thread(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = fast(rs_namespace)
    threads = set()
    loop_thread = threading.get_ident()

    def handle(m: Message) -> None:
        threads.add(threading.get_ident())

    consumer = Consumer(rs_redis, options)
    sub = consumer.subscribe("sync", handle, group="g")
    await consumer.start()
    await Producer(rs_redis, options).send_many("sync", list(range(20)))
    await wait_until(lambda: sub.processed == 20, 10)
    await consumer.stop()
    assert loop_thread not in threads


async def test_pause_keeps_partitions_and_resume_drains(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = fast(rs_namespace)
    await TopicStore(rs_redis, options).create("p", 2)
    consumer = Consumer(rs_redis, options)
    got: list[int] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    sub = consumer.subscribe("p", handle, group="g")
    await consumer.start()
    await wait_until(lambda: sub.owned_partitions == [0, 1], 5)
    consumer.pause("p", "g")
    assert sub.state is SubscriptionState.PAUSED
    await asyncio.sleep(0.4)  # let the workers finish the read that was blocking
    await Producer(rs_redis, options).send_many("p", list(range(10)))
    await asyncio.sleep(1.0)
    assert got == []
    assert sub.owned_partitions == [0, 1]
    consumer.resume("p", "g")
    assert sub.state is SubscriptionState.RUNNING
    await wait_until(lambda: len(got) == 10, 5)
    await consumer.stop()
    assert sub.state is SubscriptionState.STOPPED


async def test_entries_of_a_read_whose_reply_was_lost_are_processed_by_the_same_consumer(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    """A read that the server answered but whose reply never arrived (the connection dropped;
    redis-py sent the read again) leaves entries pending under the consumer's own name. No other
    consumer takes them over when there is none: the consumer itself processes them, once they
    are idle for a lease TTL (3 s here), at its next straggler check."""
    options = fast(rs_namespace)
    await TopicStore(rs_redis, options).create("lost", 1)
    keys = Keys(rs_namespace)
    got: list[int] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    consumer = Consumer(rs_redis, options, consumer_id="c1")
    sub = consumer.subscribe("lost", handle, group="g")
    await consumer.start()
    try:
        await wait_until(lambda: sub.owned_partitions == [0], 5)
        consumer.pause("lost", "g")
        await asyncio.sleep(0.4)  # the read that was blocking returns
        producer = Producer(rs_redis, options)
        await producer.send_many("lost", [1, 2, 3])
        # The lost reply: the server delivers to c1, nobody receives it.
        stream = keys.stream("lost", 0)
        delivered = await rs_redis.xreadgroup("g", "c1", {stream: ">"}, count=10)
        assert len(delivered[0][1]) == 3
        consumer.resume("lost", "g")
        await producer.send_many("lost", [4, 5])
        await wait_until(lambda: sorted(got) == [1, 2, 3, 4, 5], 10, "all five handled")
        pending = await rs_redis.xpending(stream, "g")
        assert pending["pending"] == 0
        await asyncio.sleep(1.0)  # nothing is processed twice
        assert sorted(got) == [1, 2, 3, 4, 5]
    finally:
        await consumer.stop()


@pytest.mark.cluster
async def test_stop_waits_for_the_handler_acks_and_cleans_up(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = fast(rs_namespace)
    await TopicStore(rs_redis, options).create("s", 1)
    started, release = asyncio.Event(), asyncio.Event()

    async def handle(m: Message) -> None:
        started.set()
        await release.wait()

    consumer = Consumer(rs_redis, options, consumer_id="stopper")
    sub = consumer.subscribe("s", handle, group="g")
    await consumer.start()
    await Producer(rs_redis, options).send("s", "slow")
    await asyncio.wait_for(started.wait(), 5)
    stopping = asyncio.create_task(consumer.stop(timeout=10))
    await asyncio.sleep(0.3)
    assert not stopping.done()  # waits for the handler
    release.set()
    await asyncio.wait_for(stopping, 5)
    keys = Keys(rs_namespace)
    assert sub.processed == 1
    assert (await rs_redis.xpending(keys.stream("s", 0), "g"))["pending"] == 0
    assert await rs_redis.get(keys.lease("s", 0, "g")) is None
    assert await rs_redis.zcard(keys.members("s", "g")) == 0
    assert await rs_redis.xinfo_consumers(keys.stream("s", 0), "g") == []


async def test_stop_timeout_leaves_the_message_for_the_next_owner(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = fast(rs_namespace)
    await TopicStore(rs_redis, options).create("s", 1)
    started = asyncio.Event()

    async def stuck(m: Message) -> None:
        started.set()
        await asyncio.sleep(3600)

    first = Consumer(rs_redis, options, consumer_id="first")
    first.subscribe("s", stuck, group="g")
    await first.start()
    await Producer(rs_redis, options).send("s", "unfinished")
    await asyncio.wait_for(started.wait(), 5)
    await first.stop(timeout=0.2)
    got: list[Message] = []

    async def handle(m: Message) -> None:
        got.append(m)

    second = Consumer(rs_redis, options, consumer_id="second")
    second.subscribe("s", handle, group="g")
    await second.start()
    await wait_until(lambda: len(got) == 1, 5)
    await second.stop()
    assert got[0].payload == "unfinished"
    assert got[0].attempt == 2  # delivered before, to the stopped consumer
    keys = Keys(rs_namespace)
    assert (await rs_redis.xpending(keys.stream("s", 0), "g"))["pending"] == 0


async def test_subscribe_validates_its_arguments(rs_redis: aioredis.Redis) -> None:
    consumer = Consumer(rs_redis)

    async def handle(m: Message) -> None:
        pass

    consumer.subscribe("t", handle, group="g")
    with pytest.raises(ConfigurationError, match="already has a subscription"):
        consumer.subscribe("t", handle, group="g")
    with pytest.raises(ConfigurationError, match="invalid group name"):
        consumer.subscribe("t", handle, group="bad group")
    with pytest.raises(ConfigurationError, match="start must be"):
        consumer.subscribe("u", handle, group="g", start="middle")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="consumer id"):
        Consumer(rs_redis, consumer_id="a b")


async def test_keeps_running_through_a_server_restart(rs_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(
        rs_server.url, socket_connect_timeout=1, retry=RedisRetry(ExponentialBackoff(), 3)
    )
    options = fast("restart")
    got: list[int] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    consumer = Consumer(client, options)
    sub = consumer.subscribe("r", handle, group="g")
    producer = Producer(client, options)
    try:
        await consumer.start()
        await producer.send_many("r", list(range(10)))
        await wait_until(lambda: len(got) == 10, 10)
        rs_server.stop()
        await asyncio.sleep(1.5)  # the consumer backs off meanwhile
        rs_server.start()
        await wait_until(lambda: sub.owned_partitions != [], 10)

        async def sent_after_restart() -> bool:
            try:
                await producer.send("r", 100 + len(got))
            except Exception:
                return False
            return True

        await wait_until(sent_after_restart, 10)
        await wait_until(lambda: any(n >= 100 for n in got), 15, "consumption after restart")
        assert consumer.running
    finally:
        await consumer.stop()
        await client.aclose()


async def test_client_pause_loses_nothing(
    rs_redis: aioredis.Redis, rs_namespace: str, rs_server_url: str
) -> None:
    options = fast(rs_namespace)
    await TopicStore(rs_redis, options).create("cp", 4)
    got: Counter[int] = Counter()

    async def handle(m: Message) -> None:
        got[m.payload] += 1

    consumer = Consumer(rs_redis, options)
    consumer.subscribe("cp", handle, group="g")
    await consumer.start()
    producer = Producer(rs_redis, options)
    admin = aioredis.Redis.from_url(rs_server_url)
    try:
        await producer.send_many("cp", list(range(500)))
        await admin.execute_command("CLIENT", "PAUSE", 3000, "ALL")
        await producer.send_many("cp", list(range(500, 1000)))  # waits out the pause
        await wait_until(lambda: len(got) == 1000, 20)
    finally:
        await consumer.stop()
        await admin.aclose()
    assert set(got) == set(range(1000))


async def test_a_lost_lease_stops_the_worker_at_once(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    options = fast(rs_namespace)
    await TopicStore(rs_redis, options).create("l", 1)
    got: list[str] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    consumer = Consumer(rs_redis, options, consumer_id="owner")
    sub = consumer.subscribe("l", handle, group="g")
    await consumer.start()
    producer = Producer(rs_redis, options)
    await wait_until(lambda: sub.owned_partitions == [0], 5)
    lease = Keys(rs_namespace).lease("l", 0, "g")
    await rs_redis.set(lease, "thief")  # someone else holds it now (no expiry)
    await wait_until(lambda: sub.owned_partitions == [], 5, "the renewal to notice")
    await asyncio.sleep(0.4)  # the read that was blocking returns
    await producer.send("l", "while stolen")
    await asyncio.sleep(1.0)
    assert got == []
    await rs_redis.delete(lease)
    await wait_until(lambda: got == ["while stolen"], 5)
    await consumer.stop()


async def test_a_deleted_stream_is_recreated(rs_redis: aioredis.Redis, rs_namespace: str) -> None:
    options = fast(rs_namespace)
    await TopicStore(rs_redis, options).create("d", 1)
    got: list[str] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    consumer = Consumer(rs_redis, options)
    sub = consumer.subscribe("d", handle, group="g")
    await consumer.start()
    producer = Producer(rs_redis, options)
    await producer.send("d", "one")
    await wait_until(lambda: got == ["one"], 5)
    await rs_redis.delete(Keys(rs_namespace).stream("d", 0))  # unblocks the read: UNBLOCKED
    await asyncio.sleep(0.2)

    async def delivered_again() -> bool:
        await producer.send("d", "two")
        await asyncio.sleep(0.3)
        return "two" in got

    await wait_until(delivered_again, 10)
    assert sub.state is SubscriptionState.RUNNING
    await consumer.stop()


@pytest.mark.cluster
async def test_poison_message_is_dead_lettered(rs_redis: aioredis.Redis, rs_namespace: str) -> None:
    options = fast(rs_namespace, max_deliveries=3)
    await TopicStore(rs_redis, options).create("poison", 1)
    keys = Keys(rs_namespace)
    stream = keys.stream("poison", 0)
    await Producer(rs_redis, options).send("poison", "kills consumers")
    await rs_redis.xgroup_create(stream, "g", id="0", mkstream=True)
    # three consumers "crashed" while handling it: delivered three times, never acknowledged
    [[_, [(entry_id, _)]]] = await rs_redis.xreadgroup("g", "dead-1", {stream: ">"})
    for name in ("dead-2", "dead-3"):
        await rs_redis.xclaim(stream, "g", name, 0, [entry_id])
    handled: list[Message] = []

    async def handle(m: Message) -> None:
        handled.append(m)

    consumer = Consumer(rs_redis, options, consumer_id="survivor")
    sub = consumer.subscribe("poison", handle, group="g")
    await consumer.start()
    await wait_until(lambda: sub.dead_lettered == 1, 5)
    await consumer.stop()
    assert handled == []
    [(_, dead)] = await rs_redis.xrange(keys.dlq("poison"))
    assert dead[b"dlq_reason"] == b"poison"
    assert dead[b"dlq_attempts"] == b"4"
    assert dead[b"payload"] == b"kills consumers"
    assert (await rs_redis.xpending(stream, "g"))["pending"] == 0
