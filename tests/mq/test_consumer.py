import asyncio
import threading
import time
from collections import Counter

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ResponseError

from redis_streaming import (
    ConfigurationError,
    Consumer,
    Keys,
    Message,
    MQOptions,
    Producer,
    ProducerRecord,
    RetryPolicy,
    SubscriptionState,
)
from redis_streaming.mq.consume.leases import Leases
from redis_streaming.mq.topics import TopicStore
from redis_streaming.testing import RedisServer
from tests.helpers import fast_mq, running, wait_until
from tests.mq.procs import blocked_reads, not_reading


@pytest.mark.cluster
async def test_two_groups_each_receive_every_message_once(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("orders", 8)
    seen: dict[str, Counter[int]] = {"billing": Counter(), "shipping": Counter()}
    handled_by: dict[str, set[str]] = {"billing": set(), "shipping": set()}
    consumers = []
    for group in seen:
        for i in range(2):

            async def handle(m: Message, group: str = group, me: str = f"{group}-{i}") -> None:
                seen[group][m.payload["n"]] += 1
                handled_by[group].add(me)

            c = Consumer(rs_redis, fast_options, consumer_id=f"{group}-{i}")
            c.subscribe("orders", handle, group=group)
            consumers.append(c)
    async with running(*consumers):
        subs = [c.subscriptions[0] for c in consumers]
        await wait_until(lambda: all(len(s.owned_partitions) == 4 for s in subs), 10, "balance")
        records = [{"n": n} for n in range(2000)]
        await Producer(rs_redis, fast_options).send_many("orders", records)
        await wait_until(lambda: all(sum(s.values()) >= 2000 for s in seen.values()), 20)
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
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    producer = Producer(rs_redis, fast_options)
    await TopicStore(rs_redis, fast_options).create("t", 1)
    await producer.send("t", "old")
    got: dict[str, list[str]] = {"early": [], "late": []}
    consumer = Consumer(rs_redis, fast_options)

    async def early(m: Message) -> None:
        got["early"].append(m.payload)

    async def late(m: Message) -> None:
        got["late"].append(m.payload)

    consumer.subscribe("t", early, group="early", start="earliest")
    consumer.subscribe("t", late, group="late", start="latest")
    stream = Keys(rs_namespace).stream("t", 0)

    async def late_group_created() -> bool:  # at '$': a message sent before it is not seen
        return any(g["name"] == b"late" for g in await rs_redis.xinfo_groups(stream))

    async with consumer:
        await wait_until(lambda: got["early"] == ["old"], 5)
        await wait_until(late_group_created, 5, "the late group's worker to create its group")
        await producer.send("t", "new")
        await wait_until(lambda: got["late"] == ["new"] and got["early"] == ["old", "new"], 5)


async def test_plain_functions_run_in_a_worker_thread(
    rs_redis: aioredis.Redis, fast_options: MQOptions
) -> None:
    threads = set()
    loop_thread = threading.get_ident()

    def handle(m: Message) -> None:
        threads.add(threading.get_ident())

    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("sync", handle, group="g")
    async with consumer:
        await Producer(rs_redis, fast_options).send_many("sync", list(range(20)))
        await wait_until(lambda: sub.processed == 20, 10)
    assert loop_thread not in threads


async def test_a_pause_takes_effect_at_once_even_with_a_read_in_flight(
    rs_redis: aioredis.Redis, rs_namespace: str, rs_server_url: str
) -> None:
    """Once ``pause`` returned, no handler is called (newcomer trial m3: two of three orders sent
    right after a pause were still handled). Entries that the read already in flight returns
    are held, in order, and handled after ``resume``; none is lost, and the lease stays the
    consumer's meanwhile."""
    # A long read (block_ms below half the TTL), surely in flight when the pause comes.
    options = fast_mq(rs_namespace, lease_ttl_s=10.0, block_ms=4900)
    await TopicStore(rs_redis, options).create("p", 1)
    keys = Keys(rs_namespace)
    name = f"{rs_namespace}-c1"
    client = aioredis.Redis.from_url(rs_server_url, client_name=name)
    consumer = Consumer(client, options, consumer_id="c1")
    got: list[int] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    sub = consumer.subscribe("p", handle, group="g")
    producer = Producer(rs_redis, options)
    async with client, consumer:
        await wait_until(lambda: sub.owned_partitions == [0], 5)
        await producer.send("p", 0)
        await wait_until(lambda: got == [0], 5)

        async def reading() -> bool:  # the read after message 0: it has about 4.9 s to go
            return await blocked_reads(rs_redis, name) == 1

        await wait_until(reading, 5, "the worker's next read to block")
        consumer.pause("p", "g")
        assert sub.state is SubscriptionState.PAUSED
        [first, *_] = await producer.send_many("p", [1, 2, 3])

        async def delivered() -> bool:  # the read in flight returned (at least) message 1
            [group] = await rs_redis.xinfo_groups(keys.stream("p", 0))
            return _id(group["last-delivered-id"].decode()) >= _id(first.message_id)

        await wait_until(delivered, 5, "the read in flight to return")
        await asyncio.sleep(0.5)  # a window in which no handler may run (not a synchronisation)
        assert got == [0]
        assert await rs_redis.get(keys.lease("p", 0, "g")) == b"c1"
        consumer.resume("p", "g")
        assert sub.state is SubscriptionState.RUNNING
        await wait_until(lambda: len(got) == 4, 5, "the held entries to be handled")
        assert got == [0, 1, 2, 3]

        async def all_acknowledged() -> bool:
            return int((await rs_redis.xpending(keys.stream("p", 0), "g"))["pending"]) == 0

        await wait_until(all_acknowledged, 5, "pending 0")
    assert sub.state is SubscriptionState.STOPPED


async def test_a_paused_listener_keeps_its_leases_past_the_ttl(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    """A pause longer than the lease TTL (2 x TTL here) with another member present: the lease
    keys in Redis still name the paused consumer all along (its coordinator renews them and
    heartbeats), the other member handles none of its partition's messages, and after resume
    the paused consumer handles them all, in order."""
    await TopicStore(rs_redis, fast_options).create("p", 2)
    keys = Keys(rs_namespace)
    got: dict[str, list[int]] = {"a": [], "b": []}
    consumers = {}
    for cid in got:

        async def handle(m: Message, cid: str = cid) -> None:
            got[cid].append(m.payload)

        consumers[cid] = Consumer(rs_redis, fast_options, consumer_id=cid)
        consumers[cid].subscribe("p", handle, group="g")
    a, b = (consumers[cid].subscriptions[0] for cid in ("a", "b"))
    async with running(*consumers.values()):
        # members sorted: partition 0 is a's, partition 1 is b's
        await wait_until(lambda: a.owned_partitions == [0] and b.owned_partitions == [1], 10)
        consumers["a"].pause("p", "g")
        producer = Producer(rs_redis, fast_options)
        await producer.send_many("p", [ProducerRecord(n, partition=0) for n in range(5)])
        lease = keys.lease("p", 0, "g")
        end = time.monotonic() + 2 * fast_options.lease_ttl_s
        while time.monotonic() < end:  # observed all along, not only at the end
            assert await rs_redis.get(lease) == b"a"
            assert await rs_redis.zscore(keys.members("p", "g"), "a") is not None
            await asyncio.sleep(0.1)
        assert got == {"a": [], "b": []}
        consumers["a"].resume("p", "g")
        await wait_until(lambda: got["a"] == list(range(5)), 5, "a to handle its partition")
        assert got["b"] == []


async def test_a_pause_also_holds_a_blocking_retry(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    """A blocking-mode retry waiting out its backoff when the pause comes is not called until
    the listener is resumed; the entry stays pending meanwhile and is handled once after."""
    await TopicStore(rs_redis, fast_options).create("b", 1)
    policy = RetryPolicy(mode="blocking", initial_backoff_s=0.3, jitter=0, max_attempts=3)
    attempts: list[int] = []
    failed = asyncio.Event()

    async def handle(m: Message) -> None:
        attempts.append(m.attempt)
        if m.attempt == 1:
            failed.set()
            raise RuntimeError("the first attempt fails")

    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("b", handle, group="g", retry=policy)
    stream = Keys(rs_namespace).stream("b", 0)
    async with consumer:
        await Producer(rs_redis, fast_options).send("b", "x")
        await asyncio.wait_for(failed.wait(), 5)
        consumer.pause("b", "g")  # the worker is in the 0.3 s backoff now
        await asyncio.sleep(1.0)  # a window in which no handler may run (not a synchronisation)
        assert attempts == [1]
        assert (await rs_redis.xpending(stream, "g"))["pending"] == 1
        consumer.resume("b", "g")
        await wait_until(lambda: sub.processed == 1, 5)
        assert attempts == [1, 2]


async def test_entries_of_a_read_whose_reply_was_lost_are_processed_by_the_same_consumer(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions, rs_server_url: str
) -> None:
    """A read that the server answered but whose reply never arrived (the connection dropped;
    redis-py sent the read again) leaves entries pending under the consumer's own name. No other
    consumer takes them over when there is none: the consumer itself processes them, once they
    are idle for a lease TTL (3 s here), at its next straggler check."""
    await TopicStore(rs_redis, fast_options).create("lost", 1)
    keys = Keys(rs_namespace)
    got: list[int] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    name = f"{rs_namespace}-c1"
    client = aioredis.Redis.from_url(rs_server_url, client_name=name)
    consumer = Consumer(client, fast_options, consumer_id="c1")
    sub = consumer.subscribe("lost", handle, group="g")
    async with client, consumer:
        await wait_until(lambda: sub.owned_partitions == [0], 5)
        consumer.pause("lost", "g")
        await wait_until(not_reading(rs_redis, name), 5, "the paused worker to stop reading")
        producer = Producer(rs_redis, fast_options)
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
        await asyncio.sleep(1.0)  # a window in which nothing may be processed twice
        assert sorted(got) == [1, 2, 3, 4, 5]


@pytest.mark.cluster
async def test_stop_waits_for_the_handler_acks_and_cleans_up(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("s", 1)
    started, release = asyncio.Event(), asyncio.Event()

    async def handle(m: Message) -> None:
        started.set()
        await release.wait()

    consumer = Consumer(rs_redis, fast_options, consumer_id="stopper")
    sub = consumer.subscribe("s", handle, group="g")
    async with consumer:
        await Producer(rs_redis, fast_options).send("s", "slow")
        await asyncio.wait_for(started.wait(), 5)
        stopping = asyncio.create_task(consumer.stop(timeout=10))
        await asyncio.sleep(0.3)  # a window in which stop may not return (not a synchronisation)
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
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("s", 1)
    started = asyncio.Event()

    async def stuck(m: Message) -> None:
        started.set()
        await asyncio.sleep(3600)

    first = Consumer(rs_redis, fast_options, consumer_id="first")
    first.subscribe("s", stuck, group="g")
    async with first:
        await Producer(rs_redis, fast_options).send("s", "unfinished")
        await asyncio.wait_for(started.wait(), 5)
        await first.stop(timeout=0.2)
    got: list[Message] = []

    async def handle(m: Message) -> None:
        got.append(m)

    second = Consumer(rs_redis, fast_options, consumer_id="second")
    second.subscribe("s", handle, group="g")
    async with second:
        await wait_until(lambda: len(got) == 1, 5)
    assert got[0].payload == "unfinished"
    assert got[0].attempt == 2  # delivered before, to the stopped consumer
    keys = Keys(rs_namespace)
    assert (await rs_redis.xpending(keys.stream("s", 0), "g"))["pending"] == 0


async def test_async_with_stops_the_consumer_also_when_the_block_raises(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    """``async with consumer`` starts it and, on the way out of a block that raised, stops it as
    ``stop`` does: leases released, the group left, the subscription stopped."""
    await TopicStore(rs_redis, fast_options).create("w", 1)
    keys = Keys(rs_namespace)

    async def handle(m: Message) -> None:
        pass

    consumer = Consumer(rs_redis, fast_options, consumer_id="c1")
    sub = consumer.subscribe("w", handle, group="g")

    async def failing_block() -> None:
        async with consumer as entered:
            assert entered is consumer
            assert consumer.running
            await wait_until(lambda: sub.owned_partitions == [0], 5)
            raise RuntimeError("the block fails")

    try:
        with pytest.raises(RuntimeError, match="the block fails"):
            await failing_block()
        assert not consumer.running
        assert sub.state is SubscriptionState.STOPPED
        assert await rs_redis.get(keys.lease("w", 0, "g")) is None
        assert await rs_redis.zcard(keys.members("w", "g")) == 0
    finally:  # a no-op when async with did its job; stops what a broken one left running
        await consumer.stop()


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
    """Redis restarts empty: the consumer recreates the topic with the partition count it knew
    (3, not default_partitions 8) and its groups, and every message sent afterwards arrives."""
    client = aioredis.Redis.from_url(
        rs_server.url, socket_connect_timeout=1, retry=RedisRetry(ExponentialBackoff(), 3)
    )
    options = fast_mq("restart", default_partitions=8)
    topics = TopicStore(client, options)
    await topics.create("r", 3)
    got: list[int] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    consumer = Consumer(client, options)
    sub = consumer.subscribe("r", handle, group="g")
    producer = Producer(client, options)
    async with client, consumer:
        await producer.send_many("r", list(range(9)))
        await wait_until(lambda: sorted(got) == list(range(9)), 10)
        rs_server.stop()
        await asyncio.sleep(1.5)  # an outage of 1.5 s; the consumer backs off meanwhile
        rs_server.start()

        async def topic_recreated() -> bool:
            try:
                return await topics.get("r") is not None
            except Exception:  # the client reconnecting
                return False

        await wait_until(topic_recreated, 10, "the consumer to recreate the topic")
        meta = await topics.get("r")
        assert meta is not None
        assert meta.partitions == 3
        await wait_until(lambda: sub.owned_partitions == [0, 1, 2], 10)
        after = list(range(100, 130))
        await producer.send_many("r", after)  # round robin: ten to each partition
        await wait_until(lambda: set(after) <= set(got), 15, "every message sent after it")
        assert consumer.running


async def test_client_pause_loses_nothing(
    rs_redis: aioredis.Redis, fast_options: MQOptions, rs_server_url: str
) -> None:
    await TopicStore(rs_redis, fast_options).create("cp", 4)
    got: Counter[int] = Counter()

    async def handle(m: Message) -> None:
        got[m.payload] += 1

    consumer = Consumer(rs_redis, fast_options)
    consumer.subscribe("cp", handle, group="g")
    producer = Producer(rs_redis, fast_options)
    async with consumer, aioredis.Redis.from_url(rs_server_url) as admin:
        await producer.send_many("cp", list(range(500)))
        await admin.execute_command("CLIENT", "PAUSE", 3000, "ALL")
        await producer.send_many("cp", list(range(500, 1000)))  # waits out the pause
        await wait_until(lambda: len(got) == 1000, 20)
    assert set(got) == set(range(1000))


async def test_a_lost_lease_stops_the_worker_at_once(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions, rs_server_url: str
) -> None:
    await TopicStore(rs_redis, fast_options).create("l", 1)
    got: list[str] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    name = f"{rs_namespace}-owner"
    client = aioredis.Redis.from_url(rs_server_url, client_name=name)
    consumer = Consumer(client, fast_options, consumer_id="owner")
    sub = consumer.subscribe("l", handle, group="g")
    producer = Producer(rs_redis, fast_options)
    async with client, consumer:
        await wait_until(lambda: sub.owned_partitions == [0], 5)
        lease = Keys(rs_namespace).lease("l", 0, "g")
        await rs_redis.set(lease, "thief")  # someone else holds it now (no expiry)
        await wait_until(lambda: sub.owned_partitions == [], 5, "the renewal to notice")
        await wait_until(not_reading(rs_redis, name), 5, "the read that was blocking to return")
        await producer.send("l", "while stolen")
        await asyncio.sleep(1.0)  # a window in which no handler may run (not a synchronisation)
        assert got == []
        await rs_redis.delete(lease)
        await wait_until(lambda: got == ["while stolen"], 5)


async def test_a_deleted_stream_is_recreated(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    await TopicStore(rs_redis, fast_options).create("d", 1)
    got: list[str] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    consumer = Consumer(rs_redis, fast_options)
    sub = consumer.subscribe("d", handle, group="g")
    producer = Producer(rs_redis, fast_options)
    stream = Keys(rs_namespace).stream("d", 0)

    async def all_acknowledged() -> bool:
        return int((await rs_redis.xpending(stream, "g"))["pending"]) == 0

    async with consumer:
        await producer.send("d", "one")
        await wait_until(lambda: got == ["one"], 5)
        await rs_redis.delete(stream)  # unblocks the read: UNBLOCKED
        await producer.send("d", "two")  # recreates the stream, without the group
        await wait_until(lambda: got == ["one", "two"], 10, "the group recreated, two handled")
        await producer.send("d", "three")
        await wait_until(lambda: got == ["one", "two", "three"], 5, "three handled, once each")
        await wait_until(all_acknowledged, 5, "pending 0: nothing will be delivered again")
        assert sub.state is SubscriptionState.RUNNING
    assert got == ["one", "two", "three"]


@pytest.mark.cluster
async def test_poison_message_is_dead_lettered(rs_redis: aioredis.Redis, rs_namespace: str) -> None:
    options = fast_mq(rs_namespace, max_deliveries=3)
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
    async with consumer:
        await wait_until(lambda: sub.dead_lettered == 1, 5)
    assert handled == []
    [(_, dead)] = await rs_redis.xrange(keys.dlq("poison"))
    assert dead[b"dlq_reason"] == b"poison"
    assert dead[b"dlq_attempts"] == b"4"
    assert dead[b"payload"] == b"kills consumers"
    assert (await rs_redis.xpending(stream, "g"))["pending"] == 0


async def test_only_the_holder_renews_or_releases_a_lease(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    keys = Keys(rs_namespace)
    mine = Leases(rs_redis, keys, "t", "g", "me", 3.0)
    theirs = Leases(rs_redis, keys, "t", "g", "other", 30.0)
    assert await mine.acquire([0, 1]) == {0, 1}
    assert await theirs.acquire([0, 1, 2]) == {2}
    lease = [keys.lease("t", p, "g") for p in range(3)]
    await theirs.release([0])  # not its lease: left alone
    assert await rs_redis.get(lease[0]) == b"me"
    assert await theirs.renew([1]) == {1}  # reported lost, and not extended to 30 s
    assert 0 < await rs_redis.pttl(lease[1]) <= 3000
    assert await rs_redis.get(lease[1]) == b"me"
    await mine.release([0, 1, 2])  # deletes its own two, not the other's
    assert [await rs_redis.get(k) for k in lease] == [None, None, b"other"]
    # static membership: acquiring a lease one already holds takes it again, extended
    await rs_redis.pexpire(lease[2], 1000)
    assert await theirs.acquire([2]) == {2}
    assert await rs_redis.pttl(lease[2]) > 25_000


def test_timing_rules_are_checked_at_startup() -> None:
    """block_ms below half of lease_ttl_s (a read never outlasts the lease), and
    rebalance_interval_s at most a third of it (renewed in time): a clear error otherwise."""
    MQOptions(lease_ttl_s=3.0, rebalance_interval_s=1.0, block_ms=1499)
    with pytest.raises(ValueError, match=r"block_ms \(1500\) must stay below half of lease_ttl"):
        MQOptions(lease_ttl_s=3.0, rebalance_interval_s=1.0, block_ms=1500)
    with pytest.raises(ValueError, match=r"rebalance_interval_s \(1.01\) must be at most a third"):
        MQOptions(lease_ttl_s=3.0, rebalance_interval_s=1.01, block_ms=100)


async def test_a_partition_its_desired_owner_does_not_take_is_picked_up(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    """A member that heartbeats but never takes its share (a member entry that never expires,
    written by hand: a hung or incompatible instance) does not strand a partition: another
    member picks it up once its lease has been free for 1.5 rebalance intervals."""
    await TopicStore(rs_redis, fast_options).create("o", 2)
    keys = Keys(rs_namespace)
    forever_ms = int(time.time() * 1000) + 3_600_000
    await rs_redis.zadd(keys.members("o", "g"), {"a-ghost": forever_ms})  # sorts first: p0
    got: list[str] = []

    async def handle(m: Message) -> None:
        got.append(m.payload)

    consumer = Consumer(rs_redis, fast_options, consumer_id="b-live")
    consumer.subscribe("o", handle, group="g")
    await Producer(rs_redis, fast_options).send("o", "orphan", partition=0)
    started = time.monotonic()
    async with consumer:
        await wait_until(lambda: got == ["orphan"], 10, "partition 0 to be picked up")
        # free for 1.5 intervals, taken at the next round: within two intervals (+ slack)
        assert time.monotonic() - started <= 2 * fast_options.rebalance_interval_s + 0.5


async def test_slow_handlers_are_acknowledged_every_ack_interval(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    """With slow handlers, acknowledgements go out once the oldest is ack_interval_ms old, not
    only at the end of the batch: this bounds what a crash makes handled twice."""
    options = fast_mq(rs_namespace, ack_interval_ms=100)
    await TopicStore(rs_redis, options).create("slow", 1)
    stream = Keys(rs_namespace).stream("slow", 0)
    gate = asyncio.Event()

    async def handle(m: Message) -> None:
        if m.payload == 2:
            await asyncio.sleep(0.3)  # message 1's acknowledgement is due when this returns
        if m.payload == 3:
            await gate.wait()  # the batch is held here

    await Producer(rs_redis, options).send_many("slow", [1, 2, 3, 4, 5])  # one batch of five
    consumer = Consumer(rs_redis, options)
    consumer.subscribe("slow", handle, group="g")

    async def pending_is(n: int) -> bool:
        try:
            return int((await rs_redis.xpending(stream, "g"))["pending"]) == n
        except ResponseError:  # NOGROUP: the worker has not created the group yet
            return False

    async with consumer:
        try:
            await wait_until(lambda: pending_is(3), 5, "1 and 2 acknowledged while 3 runs")
        finally:
            gate.set()  # also when that failed: the stop would wait for the held handler
        await wait_until(lambda: pending_is(0), 5, "the rest acknowledged")


def _id(entry_id: str | None) -> tuple[int, int]:
    ms, _, seq = (entry_id or "0-0").partition("-")
    return int(ms), int(seq)
