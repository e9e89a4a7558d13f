"""Batch listeners and filters in the starter, against a real server: a ``list[Order]`` payload
makes a batch listener whose members are validated one by one (an invalid one is dead-lettered
as ``undecodable`` alone); ``batch=True``/``batch=False`` override the annotation; ``filter=``
acknowledges what it skips, shown in ``/actuator/listeners``; wiring mistakes fail at start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dependency_injector import providers
from pydantic import BaseModel

from redis_streaming import (
    ConfigurationError,
    DeadLetters,
    Keys,
    Message,
    Producer,
    ProducerRecord,
    RetryPolicy,
)
from redis_streaming_starter import (
    Container,
    RedisStreamingApplication,
    Settings,
    listener,
    resolve,
)
from redis_streaming_starter.settings import ActuatorSettings
from tests.helpers import serving, wait_until

FAST_RETRY = RetryPolicy(max_attempts=2, initial_backoff_s=0.05, jitter=0.0)


class Order(BaseModel):
    id: str
    amount: float


def _is_order(m: Message) -> bool:
    return m.headers.get("type") == "order"


class Shop:
    """The test application's listeners."""

    def __init__(self) -> None:
        self.batches: list[list[Order]] = []
        self.envelopes: list[list[str]] = []
        self.refunds: list[list[Order]] = []
        self.refund_fails = True
        self.raw: list[list[Any]] = []
        self.arrays: list[list[int]] = []
        self.events: list[str] = []

    @listener("orders", group="billing", id="bill")
    async def bill(self, orders: list[Order], messages: list[Message]) -> None:
        self.batches.append(orders)
        self.envelopes.append([m.id for m in messages])

    @listener("refunds", group="billing", id="refund", retry=FAST_RETRY)
    async def refund(self, refunds: list[Order]) -> None:
        self.refunds.append(refunds)
        if self.refund_fails:
            self.refund_fails = False
            raise RuntimeError("ledger locked")

    @listener("raw", group="g", id="raw", batch=True)
    def take_raw(self, payloads) -> None:  # type: ignore[no-untyped-def]  # plain: a thread
        self.raw.append(payloads)

    @listener("arrays", group="g", id="arrays", batch=False)
    async def take_array(self, values: list[int]) -> None:
        self.arrays.append(values)

    @listener("events", group="audit", id="audit", filter=_is_order)
    async def audit(self, event: str) -> None:
        self.events.append(event)


class ShopContainer(Container):
    shop = providers.Singleton(Shop)


def _settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "actuator": ActuatorSettings.model_validate({"expose": ["*"]}),
            "mq": settings.mq.model_copy(update={"default_partitions": 1}),
        }
    )


async def _none_pending(app: RedisStreamingApplication, topic: str, group: str) -> bool:
    keys = Keys(app.settings.mq.namespace)
    for stream in (keys.stream(topic, 0), keys.redeliver(topic, 0, group)):
        if (await app.redis.xpending(stream, group))["pending"]:
            return False
    return True


async def test_a_list_of_models_listener_gets_batches_and_an_invalid_member_is_dead_lettered_alone(
    settings: Settings,
) -> None:
    app = RedisStreamingApplication(settings=_settings(settings), container=ShopContainer)
    async with serving(app.asgi, "http://test/actuator") as http:
        shop: Shop = await resolve(app.container.shop)
        producer: Producer = await resolve(app.container.producer)
        payloads: list[Any] = [{"id": f"o-{i}", "amount": i} for i in range(6)]
        payloads[3] = {"id": "o-3", "amount": "a lot"}
        sent = await producer.send_many("orders", payloads)
        await wait_until(lambda: sum(map(len, shop.batches)) == 5, 10)
        await wait_until(lambda: _none_pending(app, "orders", "billing"), 5, "acks")
        body = (await http.get("/listeners/bill")).json()
        [dead] = await DeadLetters(app.redis, app.settings.mq).list("orders")
    got = [o for batch in shop.batches for o in batch]
    assert got == [Order(id=f"o-{i}", amount=i) for i in (0, 1, 2, 4, 5)]
    assert [i for ids in shop.envelopes for i in ids] == [
        r.message_id for i, r in enumerate(sent) if i != 3
    ]
    assert (dead.reason, dead.origin_id) == ("undecodable", sent[3].message_id)
    assert "not a valid Order" in dead.error
    assert "a lot" not in dead.error
    assert body["batch"] is True
    assert (body["processed"], body["failed"], body["deadLettered"]) == (5, 1, 1)


async def test_a_raise_retries_the_valid_members_and_dead_letters_the_invalid_one(
    settings: Settings,
) -> None:
    app = RedisStreamingApplication(settings=_settings(settings), container=ShopContainer)
    async with serving(app.asgi):
        shop: Shop = await resolve(app.container.shop)
        producer: Producer = await resolve(app.container.producer)
        refunds = [{"id": "r-1", "amount": 1}, "junk", {"id": "r-2"}, {"id": "r-3", "amount": 3}]
        await producer.send_many("refunds", refunds)  # one batch: the first read takes them all
        assert app.consumer is not None
        sub = app.consumer.subscription("refunds", "billing")
        await wait_until(lambda: sub.processed == 2 and sub.dead_lettered == 2, 10)
        await wait_until(lambda: _none_pending(app, "refunds", "billing"), 5, "acks")
        dead = await DeadLetters(app.redis, app.settings.mq).list("refunds")
    assert sorted(e.reason for e in dead) == ["undecodable", "undecodable"]
    ids = [o.id for batch in shop.refunds for o in batch]
    assert shop.refunds[0] == [Order(id="r-1", amount=1), Order(id="r-3", amount=3)]
    assert sorted(ids) == ["r-1", "r-1", "r-3", "r-3"]  # the valid ones: failed once, then done
    assert (sub.failed, sub.retried) == (4, 2)


async def test_batch_true_and_false_override_the_annotation_and_filters_skip(
    settings: Settings,
) -> None:
    app = RedisStreamingApplication(settings=_settings(settings), container=ShopContainer)
    async with serving(app.asgi, "http://test/actuator") as http:
        shop: Shop = await resolve(app.container.shop)
        producer: Producer = await resolve(app.container.producer)
        await producer.send_many("raw", ["a", {"b": 1}, 3])
        await producer.send_many("arrays", [[1, 2], [3]])
        await producer.send_many(
            "events",
            [ProducerRecord(f"e{i}", headers={"type": ("order", "ping")[i % 2]}) for i in range(6)],
        )
        await wait_until(lambda: sum(map(len, shop.raw)) == 3, 10)
        await wait_until(lambda: len(shop.arrays) == 2, 10)
        await wait_until(lambda: _none_pending(app, "events", "audit"), 10, "events acked")
        body = (await http.get("/listeners/audit")).json()
    assert [x for batch in shop.raw for x in batch] == ["a", {"b": 1}, 3]
    assert shop.arrays == [[1, 2], [3]]
    assert shop.events == ["e0", "e2", "e4"]
    assert (body["processed"], body["filtered"], body["batch"]) == (3, 3, False)


def _app_with(settings: Settings, method: Callable[..., Any]) -> RedisStreamingApplication:
    holder = type("Holder", (), {"handle": method})
    container = Container()
    container.set_provider("holder", providers.Singleton(holder))
    return RedisStreamingApplication(settings=_settings(settings), container=container)


async def test_wiring_mistakes_of_batch_listeners_fail_at_start(settings: Settings) -> None:
    @listener("t", batch=True)
    async def not_a_list(self: Any, order: Order) -> None: ...

    @listener("t")
    async def single_envelope(self: Any, orders: list[Order], message: Message) -> None: ...

    for method, match in (
        (not_a_list, r"batch=True but its payload parameter is annotated .*Order.*list\[Order\]"),
        (single_envelope, r"parameter 'message' would receive the envelopes .* list\[Message\]"),
    ):
        app = _app_with(settings, method)
        with pytest.raises(ConfigurationError, match=match):
            await app.start()


def test_a_filter_must_be_a_plain_function() -> None:
    async def later(m: Message) -> bool:
        return True

    with pytest.raises(ConfigurationError, match=r"filter=\.\.\.\) takes a plain \(not async\)"):
        listener("t", filter=later)  # type: ignore[arg-type]
