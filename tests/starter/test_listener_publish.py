"""``@listener(..., publish_to=...)``: results published keyed like their message with origin
headers, generator listeners publishing each item, a failing publish (denied by ACL, or a
partition key of the wrong type) retrying the message with nothing lost and, after the repair,
exactly one publication per result; startup checks and the unpublished-result warnings."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from dependency_injector import providers

from redis_streaming import (
    ConfigurationError,
    DeadLetters,
    InvalidName,
    Keys,
    Message,
    Producer,
    ProducerRecord,
    RetryPolicy,
    partition_for_key,
)
from redis_streaming.mq.wire.codec import decode_payload, parse_fields
from redis_streaming_starter import (
    Container,
    RedisStreamingApplication,
    Settings,
    listener,
    resolve,
)
from tests.helpers import wait_until

FAST_RETRY = RetryPolicy(max_attempts=1000, initial_backoff_s=0.05, max_backoff_s=0.2)


async def published(redis_client: Any, namespace: str, topic: str) -> list[Message]:
    """Every message of ``topic`` (all partitions, in partition then id order), read raw."""
    keys = Keys(namespace)
    meta = await redis_client.hgetall(keys.topic(topic))
    out = []
    for partition in range(int(meta.get(b"partitions", 0))):
        for eid, raw in await redis_client.xrange(keys.stream(topic, partition)):
            fields = parse_fields(raw)
            out.append(
                Message(
                    id=eid.decode(),
                    topic=topic,
                    partition=partition,
                    payload=decode_payload(fields.raw, fields.content_type),
                    raw=fields.raw,
                    content_type=fields.content_type,
                    key=fields.key,
                    headers=fields.headers,
                )
            )
    return out


def with_mq(settings: Settings, **mq: Any) -> Settings:
    return settings.model_copy(update={"mq": settings.mq.model_copy(update=mq)})


class Enricher:
    """Listeners with results: a single value, a keyed value, generators, a ProducerRecord."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    @listener("orders", group="enrich", publish_to="enriched")
    async def enrich(self, order: dict[str, Any]) -> dict[str, Any] | None:
        self.calls[order["id"]] += 1
        if order.get("skip"):
            return None
        return {**order, "enriched": True}

    @listener(
        "orders", group="rekey", publish_to="by-customer", publish_key=lambda r: r["customer"]
    )
    async def rekey(self, order: dict[str, Any]) -> dict[str, Any]:
        return {"customer": order.get("customer"), "order": order["id"]}

    @listener("orders", group="split", publish_to="lines")
    async def split(self, order: dict[str, Any]) -> AsyncIterator[dict[str, Any] | None]:
        for n in range(order.get("lines", 0)):
            yield {"order": order["id"], "line": n}
        yield None  # skipped

    @listener("orders", group="split-sync", publish_to="lines-sync")
    def split_sync(self, order: dict[str, Any]) -> Iterator[Any]:
        for n in range(order.get("lines", 0)):
            yield ProducerRecord(f"{order['id']}/{n}", key=f"line-{n}", headers={"n": str(n)})


class EnricherContainer(Container):
    enricher = providers.Singleton(Enricher)


async def test_results_are_published_keyed_like_their_message_with_origin_headers(
    settings: Settings, rs_redis: Any, rs_namespace: str
) -> None:
    app = RedisStreamingApplication(
        settings=with_mq(settings, default_partitions=4), container=EnricherContainer
    )
    await app.start()
    try:
        producer: Producer = await resolve(app.container.producer)
        sent = await producer.send(
            "orders", {"id": "o-1", "customer": "c-9", "lines": 3}, key="o-1"
        )
        await producer.send("orders", {"id": "o-2", "skip": True, "lines": 0}, key="o-2")
        await producer.send("orders", {"id": "o-3"})  # no key: neither has its result
        enricher: Enricher = await resolve(app.container.enricher)
        await wait_until(lambda: sum(enricher.calls.values()) == 3, 15, "3 orders enriched")

        async def lines_out() -> bool:
            return len(await published(rs_redis, rs_namespace, "lines-sync")) == 3

        await wait_until(lines_out, 15, "3 sync lines")
        for s in app.consumer.subscriptions if app.consumer else []:
            await wait_until(lambda s=s: s.processed == 3, 15, f"{s.id} handled all")
    finally:
        await app.stop()

    enriched = await published(rs_redis, rs_namespace, "enriched")
    assert sorted(m.payload["id"] for m in enriched) == ["o-1", "o-3"]  # None: nothing
    [first] = [m for m in enriched if m.payload["id"] == "o-1"]
    assert first.payload == {"id": "o-1", "customer": "c-9", "lines": 3, "enriched": True}
    assert first.key == "o-1"
    assert first.partition == partition_for_key("o-1", 4)
    assert first.headers == {
        "x-origin-topic": "orders",
        "x-origin-partition": str(sent.partition),
        "x-origin-id": sent.message_id,
        "x-origin-group": "enrich",
        "x-origin-index": "0",
    }
    [third] = [m for m in enriched if m.payload["id"] == "o-3"]
    assert third.key is None

    by_customer = await published(rs_redis, rs_namespace, "by-customer")
    assert sorted((m.payload["order"], m.key) for m in by_customer) == [
        ("o-1", "c-9"), ("o-2", None), ("o-3", None),
    ]  # fmt: skip  # publish_key returned None for orders without a customer

    lines = await published(rs_redis, rs_namespace, "lines")
    assert sorted((m.payload["line"], m.headers["x-origin-index"]) for m in lines) == [
        (0, "0"), (1, "1"), (2, "2"),
    ]  # fmt: skip
    assert {m.key for m in lines} == {"o-1"}

    sync_lines = await published(rs_redis, rs_namespace, "lines-sync")
    assert sorted((m.payload, m.key, m.headers["n"]) for m in sync_lines) == [
        ("o-1/0", "line-0", "0"), ("o-1/1", "line-1", "1"), ("o-1/2", "line-2", "2"),
    ]  # fmt: skip  # a ProducerRecord's key and headers, with the origin headers
    assert {m.headers["x-origin-group"] for m in sync_lines} == {"split-sync"}


class Traced:
    @listener("traced-in", group="t", publish_to="traced-out")
    async def forward(self, body: str) -> str:
        return body.upper()


class TracedContainer(Container):
    traced = providers.Singleton(Traced)


async def test_without_tracing_a_result_keeps_its_message_s_trace_context(
    settings: Settings, rs_redis: Any, rs_namespace: str
) -> None:
    app = RedisStreamingApplication(settings=settings, container=TracedContainer)
    context = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=1",
        "baggage": "tenant=acme",
    }
    await app.start()
    try:
        producer: Producer = await resolve(app.container.producer)
        await producer.send("traced-in", "hello", headers={**context, "private": "x"})

        async def forwarded() -> bool:
            return len(await published(rs_redis, rs_namespace, "traced-out")) == 1

        await wait_until(forwarded, 15, "forwarded")
    finally:
        await app.stop()
    [out] = await published(rs_redis, rs_namespace, "traced-out")
    assert out.payload == "HELLO"
    assert {k: v for k, v in out.headers.items() if not k.startswith("x-origin-")} == context


async def test_with_tracing_a_result_continues_the_trace_under_the_listener_s_span(
    settings: Settings, rs_redis: Any, rs_namespace: str
) -> None:
    data = settings.model_dump()
    data["tracing"] = {"enabled": True, "set_global": False, "exporter": "none"}
    app = RedisStreamingApplication(
        settings=Settings.model_validate(data), container=TracedContainer
    )
    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    await app.start()
    try:
        producer: Producer = await resolve(app.container.producer)
        await producer.send(
            "traced-in", "hello", headers={"traceparent": f"00-{trace_id}-{span_id}-01"}
        )

        async def forwarded() -> bool:
            return len(await published(rs_redis, rs_namespace, "traced-out")) == 1

        await wait_until(forwarded, 15, "forwarded")
    finally:
        await app.stop()
    [out] = await published(rs_redis, rs_namespace, "traced-out")
    _, out_trace, out_span, _ = out.headers["traceparent"].split("-")
    assert out_trace == trace_id  # the same trace ...
    assert out_span != span_id  # ... under this application's spans, not a copy of the input's


# -- a failing publish -------------------------------------------------------------------------


def part_key(result: dict[str, int]) -> str:
    return f"part{result['part']}/order{result['n']}"


class Splitter:
    """Three results per order, spread over the partitions of ``results`` by ``part_key``, all
    published in one transaction."""

    def __init__(self) -> None:
        self.calls: Counter[int] = Counter()

    @listener("orders", group="split", publish_to="results", publish_key=part_key, retry=FAST_RETRY)
    async def split(self, order: dict[str, int]) -> AsyncIterator[dict[str, int]]:
        self.calls[order["n"]] += 1
        for part in range(3):
            yield {"n": order["n"], "part": part}


class SplitterContainer(Container):
    splitter = providers.Singleton(Splitter)


@pytest.fixture
def restricted_user(rs_server_url: str, rs_namespace: str) -> Iterator[tuple[str, Any]]:
    """A real ACL user for the application: every command, the test namespace's keys except
    that the keys of partition 1 of the ``results`` topic are read-only. Yields its URL and
    ``repair()``, which grants write access to them; the user is deleted afterwards."""
    admin = redis.Redis.from_url(rs_server_url)
    name, password = f"pub-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    ns = rs_namespace
    admin.execute_command(
        "ACL", "SETUSER", name, "on", f">{password}", "+@all", "resetchannels", f"&{ns}:*",
        "resetkeys", f"~{ns}:*{{orders*", f"~{ns}:topic*", f"~{ns}:*{{results:0}}*",
        f"%R~{ns}:*{{results*",
    )  # fmt: skip
    where = admin.connection_pool.connection_kwargs
    url = f"redis://{name}:{password}@{where['host']}:{where['port']}/0"

    def repair() -> None:
        admin.execute_command("ACL", "SETUSER", name, f"~{ns}:*")

    try:
        yield url, repair
    finally:
        admin.execute_command("ACL", "DELUSER", name)
        admin.close()


async def test_a_publish_denied_by_acl_retries_the_message_and_publishes_once_after_repair(
    settings: Settings, rs_redis: Any, rs_namespace: str, restricted_user: tuple[str, Any]
) -> None:
    inputs = 6
    spread = [
        n
        for n in range(inputs)
        if len({partition_for_key(part_key({"n": n, "part": p}), 2) for p in range(3)}) == 2
    ]
    assert len(spread) >= 3  # those orders' results go to both partitions: half could be written
    url, repair = restricted_user
    data = with_mq(settings, default_partitions=2).model_dump()
    data["redis"]["url"] = url
    app = RedisStreamingApplication(
        settings=Settings.model_validate(data), container=SplitterContainer
    )
    await app.start()
    try:
        producer: Producer = await resolve(app.container.producer)
        sent = await producer.send_many(
            "orders", [ProducerRecord({"n": n}, key=str(n)) for n in range(inputs)]
        )
        assert app.consumer is not None
        sub = app.consumer.subscription("orders", "split")
        await wait_until(lambda: sub.failed >= 2 * inputs, 20, "every order failing twice")
        assert sub.retried >= 2 * inputs
        assert sub.processed == 0
        assert "permission" in (sub.last_error or "")
        # Partition 0 is writable, but a call's results go all together or not at all.
        assert await published(rs_redis, rs_namespace, "results") == []
        repair()
        await wait_until(lambda: sub.processed == inputs, 20, "every order handled")
    finally:
        await app.stop()
    splitter: Splitter = await resolve(app.container.splitter)
    assert all(splitter.calls[n] >= 3 for n in range(inputs))  # retried, not lost
    results = await published(rs_redis, rs_namespace, "results")
    # Exactly one publication per result: none lost, none twice.
    assert sorted((m.payload["n"], m.payload["part"]) for m in results) == [
        (n, part) for n in range(inputs) for part in range(3)
    ]
    origins = {
        (m.headers["x-origin-partition"], m.headers["x-origin-id"], m.headers["x-origin-index"])
        for m in results
    }
    assert len(origins) == 3 * inputs  # what a downstream deduplication would key on
    # Retried several times, each result names the original entry (not the retry's entry).
    assert {(p, i) for p, i, _ in origins} == {(str(s.partition), s.message_id) for s in sent}
    assert await DeadLetters(rs_redis, app.settings.mq).list("orders") == []


class Forwarder:
    @listener("inbox", group="fwd", publish_to="outbox", retry=FAST_RETRY)
    async def forward(self, body: dict[str, int]) -> dict[str, int]:
        return {"n": body["n"] * 10}


class ForwarderContainer(Container):
    forwarder = providers.Singleton(Forwarder)


async def test_a_publish_to_a_key_of_the_wrong_type_retries_until_repaired(
    settings: Settings, rs_redis: Any, rs_namespace: str
) -> None:
    app = RedisStreamingApplication(
        settings=with_mq(settings, default_partitions=1), container=ForwarderContainer
    )
    outbox = Keys(rs_namespace).stream("outbox", 0)
    await app.start()  # creates outbox (one partition): publish_to is checked at startup
    try:
        await rs_redis.set(outbox, "not a stream")
        producer: Producer = await resolve(app.container.producer)
        await producer.send_many("inbox", [{"n": n} for n in range(5)])
        assert app.consumer is not None
        sub = app.consumer.subscription("inbox", "fwd")
        await wait_until(lambda: sub.failed >= 5, 20, "publishes failing")
        assert "WRONGTYPE" in (sub.last_error or "")
        await rs_redis.delete(outbox)
        await wait_until(lambda: sub.processed == 5, 20, "all forwarded")
    finally:
        await app.stop()
    results = await published(rs_redis, rs_namespace, "outbox")
    assert sorted(m.payload["n"] for m in results) == [0, 10, 20, 30, 40]


# -- startup and decoration --------------------------------------------------------------------


class NoSuchTopic:
    @listener("orders", group="g", publish_to="missing")
    async def handle(self, order: dict[str, Any]) -> dict[str, Any]:
        return order


class NoSuchTopicContainer(Container):
    listener_object = providers.Singleton(NoSuchTopic)


async def test_an_unknown_publish_to_topic_stops_startup_when_topics_are_not_created(
    settings: Settings,
) -> None:
    app = RedisStreamingApplication(
        settings=with_mq(settings, auto_create_topics=False), container=NoSuchTopicContainer
    )
    try:
        with pytest.raises(ConfigurationError) as caught:
            await app.start()
    finally:
        await app.stop()  # had it started
    message = str(caught.value)
    assert "NoSuchTopic.handle" in message
    assert "publish_to='missing'" in message
    assert "auto_create_topics" in message


def test_publish_to_and_publish_key_are_checked_at_decoration() -> None:
    with pytest.raises(InvalidName, match="publish_to"):
        listener("orders", publish_to="no spaces")
    with pytest.raises(ConfigurationError, match="without publish_to"):
        listener("orders", publish_key=lambda r: None)
    with pytest.raises(ConfigurationError, match="function of the result"):
        listener("orders", publish_to="out", publish_key="customer")  # type: ignore[arg-type]


# -- warnings ------------------------------------------------------------------------------


class Unpublished:
    def __init__(self) -> None:
        self.calls = 0

    @listener("orders", group="lost", id="lost")
    async def lost(self, order: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return order

    @listener("orders", group="quiet", id="quiet")
    async def quiet(self, order: dict[str, Any]) -> None:
        self.calls += 1

    @listener("orders", group="kept", id="kept", publish_to="kept-out")
    async def kept(self, order: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return order


class UnpublishedContainer(Container):
    unpublished = providers.Singleton(Unpublished)


async def test_a_result_nothing_publishes_is_warned_about_once_per_listener(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "redis_streaming_starter")
    app = RedisStreamingApplication(settings=settings, container=UnpublishedContainer)
    await app.start()
    try:
        startup = [r.getMessage() for r in caplog.records if "annotated to return" in r.message]
        assert len(startup) == 1, startup
        assert "Unpublished.lost" in startup[0]
        producer: Producer = await resolve(app.container.producer)
        await producer.send_many("orders", [{"n": n} for n in range(3)])
        unpublished: Unpublished = await resolve(app.container.unpublished)
        await wait_until(lambda: unpublished.calls == 9, 15, "every listener called 3 times")
    finally:
        await app.stop()
    runtime = [r.getMessage() for r in caplog.records if "nothing publishes" in r.getMessage()]
    assert len(runtime) == 1, runtime  # once, for the one listener without publish_to
    assert runtime[0].startswith("listener lost returned a dict")


class BatchPublisher:
    @listener("orders", group="bulk", publish_to="out")
    async def bulk(self, orders: list[dict[str, Any]]) -> None: ...


class BatchPublisherContainer(Container):
    bulk = providers.Singleton(BatchPublisher)


async def test_publish_to_on_a_batch_listener_stops_startup(settings: Settings) -> None:
    app = RedisStreamingApplication(settings=settings, container=BatchPublisherContainer)
    try:
        with pytest.raises(ConfigurationError) as caught:
            await app.start()
    finally:
        await app.stop()  # had it started
    assert "BatchPublisher.bulk is a batch listener: publish_to is not available" in str(
        caught.value
    )
