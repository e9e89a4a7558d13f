"""Request and reply: ``Producer.request`` answered by a listener's return value, a timeout, two
requesters with many requests in flight each getting their own answers, a dead-lettered
request failing at once, the reply stream's key, TTL and cleanup, and ``close()``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dependency_injector import providers

from redis_streaming import (
    Consumer,
    DeadLetter,
    InvalidArgument,
    Keys,
    Message,
    MQOptions,
    Producer,
    ProducerRecord,
    RedisStreamingError,
    RequestFailed,
    RequestTimeout,
    RetryPolicy,
    partition_for_key,
)
from redis_streaming.testing import client_from_url
from redis_streaming_starter import (
    Container,
    RedisStreamingApplication,
    Settings,
    listener,
    resolve,
)
from tests.helpers import fast_mq, wait_until
from tests.starter.test_listener_publish import published


class Prices:
    """Answers price requests; rejects unknown items; fails twice before giving up on 'flaky'."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}

    @listener("prices", group="pricing", publish_to="quotes")
    async def price(self, query: dict[str, Any]) -> dict[str, Any]:
        item = query["item"]
        if item == "unknown":
            raise DeadLetter(f"no price for {item}")
        return {"item": item, "price": len(item) * 10, "n": query.get("n")}

    @listener("fragile", group="pricing", retry=RetryPolicy(max_attempts=2, initial_backoff_s=0))
    async def fragile(self, query: dict[str, Any]) -> int:
        self.attempts[query["item"]] = self.attempts.get(query["item"], 0) + 1
        raise ValueError(f"cannot price {query['item']}")

    @listener("menus", group="pricing")
    async def menu(self, query: dict[str, int]) -> AsyncIterator[str]:
        for n in range(query["dishes"]):
            yield f"dish-{n}"


class PricesContainer(Container):
    prices = providers.Singleton(Prices)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[RedisStreamingApplication]:
    application = RedisStreamingApplication(settings=settings, container=PricesContainer)
    await application.start()
    try:
        yield application
    finally:
        await application.stop()


async def test_a_listener_answers_a_request_with_its_return_value_and_publishes_it_too(
    app: RedisStreamingApplication, rs_redis: Any, rs_namespace: str
) -> None:
    producer: Producer = await resolve(app.container.producer)
    reply = await producer.request("prices", {"item": "tea"}, key="tea", timeout=10)
    assert isinstance(reply, Message)
    assert reply.payload == {"item": "tea", "price": 30, "n": None}
    assert reply.topic == "prices"
    [quote] = await published(rs_redis, rs_namespace, "quotes")  # publish_to as well
    assert quote.payload == reply.payload
    assert quote.key == "tea"
    assert "x-reply-to" not in quote.headers  # a publication is not a request

    menu = await producer.request("menus", {"dishes": 3}, timeout=10)
    assert menu.payload == ["dish-0", "dish-1", "dish-2"]  # a generator answers with its items


async def test_a_request_nobody_answers_times_out_naming_topic_and_timeout(
    rs_redis: Any, rs_options: MQOptions
) -> None:
    producer = Producer(rs_redis, rs_options)
    try:
        with pytest.raises(RequestTimeout) as caught:
            await producer.request("nobody-listens", {"q": 1}, timeout=0.3)
    finally:
        await producer.close()
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, RedisStreamingError)
    assert "'nobody-listens'" in str(caught.value)
    assert "0.3 s" in str(caught.value)
    with pytest.raises(InvalidArgument, match="timeout"):
        await producer.request("nobody-listens", {}, timeout=0)
    with pytest.raises(InvalidArgument, match="x-reply-to"):
        await producer.request("nobody-listens", {}, headers={"x-reply-to": "me"})


async def test_two_requesters_with_many_requests_in_flight_each_get_their_own_answers(
    app: RedisStreamingApplication, rs_server_url: str, rs_options: MQOptions
) -> None:
    clients = [client_from_url(rs_server_url), client_from_url(rs_server_url)]
    requesters = [Producer(client, rs_options) for client in clients]
    try:

        async def ask(who: int, n: int) -> tuple[int, int, Any]:
            reply = await requesters[who].request(
                "prices", {"item": f"item-{who}-{n}", "n": n}, timeout=20
            )
            return who, n, reply.payload

        answers = await asyncio.gather(*(ask(who, n) for n in range(60) for who in (0, 1)))
    finally:
        for requester in requesters:
            await requester.close()
        for client in clients:
            await client.aclose()
    assert len(answers) == 120
    for who, n, payload in answers:
        assert payload["item"] == f"item-{who}-{n}"
        assert payload["n"] == n
    assert requesters[0].id != requesters[1].id


async def test_a_dead_lettered_request_fails_at_once_with_the_reason(
    app: RedisStreamingApplication,
) -> None:
    producer: Producer = await resolve(app.container.producer)
    # Timeouts far beyond how long these take: only an error reply ends them this soon.
    with pytest.raises(RequestFailed) as rejected:
        await producer.request("prices", {"item": "unknown"}, timeout=30)
    assert rejected.value.topic == "prices"
    assert rejected.value.reason == "dead-lettered (rejected): no price for unknown"

    with pytest.raises(RequestFailed) as exhausted:
        await producer.request("fragile", {"item": "glass"}, timeout=30)
    assert exhausted.value.reason == (
        "dead-lettered (max_attempts): ValueError: cannot price glass"
    )
    prices: Prices = await resolve(app.container.prices)
    assert prices.attempts["glass"] == 2  # the first failure was retried, not answered

    with pytest.raises(RequestFailed, match=r"dead-lettered \(undecodable\)"):
        await producer.request("prices", "not an object", timeout=30)


async def test_the_reply_stream_has_a_ttl_while_in_use_and_is_deleted_by_close(
    rs_redis: Any, rs_options: MQOptions
) -> None:
    producer = Producer(rs_redis, rs_options)
    key = Keys(rs_options.namespace).reply(producer.id)
    assert key == f"{rs_options.namespace}:reply:{{{producer.id}}}"
    waiting = asyncio.create_task(producer.request("slow", {}, timeout=60))

    async def opened() -> bool:
        return bool(await rs_redis.exists(key))

    await wait_until(opened, 10, "the reply stream created")
    # It expires unless refreshed (so it goes when the process dies); each read refreshes it.
    await rs_redis.pexpire(key, 5000)

    async def refreshed() -> bool:
        return 5000 < await rs_redis.pttl(key) <= 30_000

    await wait_until(refreshed, 10, "the TTL refreshed by the reader")
    await producer.close()
    with pytest.raises(RequestFailed, match="closed"):
        await waiting
    assert not await rs_redis.exists(key)

    # A request after close() opens the inbox again; the reply comes to the new stream.
    answer = asyncio.create_task(producer.request("echo", {"q": 1}, timeout=10))
    request = await _next_request(rs_redis, rs_options, "echo")
    assert Producer.wants_reply(request)
    assert await Producer(rs_redis, rs_options).reply(request, {"a": 1})
    assert (await answer).payload == {"a": 1}
    await producer.close()


async def test_a_reply_to_a_message_without_address_or_to_a_gone_requester_writes_nothing(
    rs_redis: Any, rs_options: MQOptions
) -> None:
    producer = Producer(rs_redis, rs_options)
    await producer.send("plain", {"q": 1})
    plain = await _next_request(rs_redis, rs_options, "plain")
    assert not Producer.wants_reply(plain)
    assert await producer.reply(plain, "ignored") is False

    gone = Message(
        id="1-0", topic="t", partition=0, payload=None, raw=b"", content_type="text/plain",
        headers={"x-reply-to": "gone-requester", "x-correlation-id": "c1"},
    )  # fmt: skip
    assert await producer.reply(gone, "late") is False
    assert not await rs_redis.exists(Keys(rs_options.namespace).reply("gone-requester"))


async def test_stopping_the_application_stops_its_producer_s_reply_reader(
    settings: Settings,
) -> None:
    app = RedisStreamingApplication(settings=settings, container=PricesContainer)
    await app.start()
    producer: Producer = await resolve(app.container.producer)
    try:
        await producer.request("prices", {"item": "tea"}, timeout=10)
        waiting = asyncio.create_task(producer.request("nobody-listens", {}, timeout=20))
        await wait_until(lambda: producer._inbox.reading, 10, "the reader running")
        reader = producer._inbox._task
        assert reader is not None
    finally:
        await app.stop()
    assert reader.done()
    with pytest.raises(RequestFailed, match="closed"):
        await waiting


async def _next_request(redis_client: Any, options: MQOptions, topic: str) -> Message:
    """The first message of ``topic`` (waiting for it), read raw."""
    found: list[Message] = []

    async def arrived() -> bool:
        found[:] = await published(redis_client, options.namespace, topic)
        return bool(found)

    await wait_until(arrived, 10, f"a message on {topic}")
    return found[0]


@pytest.mark.cluster
async def test_request_reply_and_transactional_send_many_without_the_starter(
    rs_redis: Any, rs_namespace: str
) -> None:
    options = fast_mq(rs_namespace, default_partitions=4)
    responder, requester = Producer(rs_redis, options), Producer(rs_redis, options)

    async def answer(message: Message) -> None:
        await responder.reply(message, {"echo": message.payload})

    consumer = Consumer(rs_redis, options)
    consumer.subscribe("echo", answer, group="echoes")
    async with consumer:
        replies = await asyncio.gather(
            *(requester.request("echo", n, key=str(n), timeout=20) for n in range(20))
        )
        assert [r.payload for r in replies] == [{"echo": n} for n in range(20)]
        # One MULTI where the client allows it (one partition on a cluster), pipelined if not.
        one = [ProducerRecord(n, key="same") for n in range(3)]
        spread = [ProducerRecord(n, key=str(n)) for n in range(8)]
        for records in (one, spread):
            sent = await requester.send_many("batch", records, transaction=True)
            assert [s.partition for s in sent] == [
                partition_for_key(r.key or "", 4) for r in records
            ]
        stored = await published(rs_redis, rs_namespace, "batch")
        assert sorted(m.payload for m in stored) == sorted([0, 1, 2, *range(8)])
    await requester.close()
    await responder.close()
