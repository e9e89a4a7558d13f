from __future__ import annotations

from typing import Any

import pytest
from dependency_injector import providers
from dependency_injector.wiring import Provide

from redis_streaming import ConfigurationError, DeadLetters, Producer
from redis_streaming.testing import free_port
from redis_streaming_starter import (
    Container,
    RedisStreamingApplication,
    Settings,
    listener,
    resolve,
)
from tests.helpers import serving, wait_until
from tests.starter.apps.orders import listeners
from tests.starter.apps.orders.services import AppContainer, Ledger, Order


@pytest.fixture(autouse=True)
def _clear() -> None:
    listeners.received.clear()


async def test_listeners_receive_bound_payloads_and_injections(settings: Settings) -> None:
    app = RedisStreamingApplication(
        settings=settings, container=AppContainer, listener_packages=["tests.starter.apps.orders"]
    )
    async with app.lifespan():
        producer: Producer = await resolve(app.container.producer)
        await producer.send("orders", Order(id="o-1", amount=3.5), key="c-1")
        await producer.send("texts", "plain words")
        await producer.send("blobs", b"\x00\x01")
        await producer.send("events", {"name": "ada"})
        await producer.send("envelopes", [1, 2])
        await producer.send("refunds", {"id": "o-7", "amount": 1.0})
        ledger: Ledger = await resolve(app.container.ledger)
        await wait_until(lambda: len(listeners.received) == 5 and len(ledger.entries) == 2, 10)
        got = dict(listeners.received)
        assert got["bill"] == (Order(id="o-1", amount=3.5), "c-1")
        assert got["text"] == "plain words"
        assert got["blob"] == b"\x00\x01"
        assert got["greet"] == "hello ada"
        assert got["envelope"] == [1, 2]
        assert sorted(ledger.entries)[0].startswith("hello o-1@")
        assert "hello refund o-7" in ledger.entries
        groups = {s.id: s.group for s in app.consumer.subscriptions}  # type: ignore[union-attr]
        assert groups["bill"] == "billing"
        assert groups["text"] == "testapp"  # app.name is the default group
        assert groups["ledger-refunds"] == "ledger"


async def test_a_payload_that_fails_validation_is_dead_lettered(settings: Settings) -> None:
    app = RedisStreamingApplication(
        settings=settings, container=AppContainer, listener_packages=["tests.starter.apps.orders"]
    )
    async with app.lifespan():
        producer: Producer = await resolve(app.container.producer)
        await producer.send("orders", {"id": "o-2", "amount": "lots"})
        dlq = DeadLetters(app.redis, settings.mq)

        async def dead() -> bool:
            return len(await dlq.list("orders", group="billing")) == 1

        await wait_until(dead, 10)
        [entry] = await dlq.list("orders", group="billing")
        assert entry.reason == "undecodable"
        assert "not a valid Order" in entry.error
        assert listeners.received == []


async def test_stacked_listeners_get_an_id_each(settings: Settings) -> None:
    from tests.starter.apps.stacked import received

    received.clear()
    app = RedisStreamingApplication(
        settings=settings, listener_packages=["tests.starter.apps.stacked"]
    )
    async with app.lifespan():
        assert app.consumer is not None
        ids = {sub.id for sub in app.consumer.subscriptions}
        assert ids == {
            "record-alerts",
            "record-audit",
            "notify-alerts-pager",
            "notify-alerts-mailer",
        }
        producer: Producer = await resolve(app.container.producer)
        await producer.send("alerts", "fire")
        await producer.send("audit", "login")
        expected = [("notify", "fire"), ("notify", "fire"), ("record", "fire"), ("record", "login")]
        await wait_until(lambda: sorted(received) == expected, 10, "four deliveries")
    received.clear()


BAD_LISTENERS = [
    ("tests.starter.apps.dup_ids", "two listeners have the id 'same'"),
    ("tests.starter.apps.no_param", "has no parameter for the payload"),
    ("tests.starter.apps.unprovided", "container provides no instance of it"),
    ("tests.starter.apps.missing", "cannot be imported"),
    ("tests.starter.apps.broken_import", "importing tests.starter.apps.broken_import.listeners"),
    ("tests.starter.apps.bad_provide", r"Provide\['nope'\] names no provider"),
    (
        "tests.starter.apps.dup_topic",  # N10: both functions are named
        "two listeners subscribe to topic 'orders' in group 'billing': "
        "tests.starter.apps.dup_topic.bill and tests.starter.apps.dup_topic.bill_again",
    ),
]


@pytest.mark.parametrize(("package", "message"), BAD_LISTENERS)
async def test_bad_listeners_fail_at_startup(
    settings: Settings, package: str, message: str
) -> None:
    app = RedisStreamingApplication(settings=settings, listener_packages=[package])
    with pytest.raises(ConfigurationError, match=message):
        await app.start()
    assert not app.running


async def test_listener_wiring_is_checked_before_redis_is_connected(settings: Settings) -> None:
    """A wiring mistake is reported as such even when Redis is unreachable: it is checked
    before the connection (with redis.cluster unset, connecting asks the server at once), so
    nothing has started when it fails."""
    unreachable = settings.model_copy(update={"redis": settings.redis.model_copy(
        update={"url": f"redis://127.0.0.1:{free_port()}/0", "cluster": None})})  # fmt: skip
    app = RedisStreamingApplication(
        settings=unreachable, listener_packages=["tests.starter.apps.dup_topic"]
    )
    with pytest.raises(ConfigurationError, match="two listeners subscribe to topic 'orders'"):
        await app.start()
    assert app.redis is None
    assert not app.running


async def test_a_provided_class_listener_is_checked_before_its_instance_is_built(
    settings: Settings,
) -> None:
    built: list[object] = []

    class Handler:
        def __init__(self) -> None:
            built.append(self)

        @listener("a")
        async def handle(self, x: dict, db: Any = Provide["nope"]) -> None:  # type: ignore[type-arg]
            pass

    class BadContainer(Container):
        handler = providers.Singleton(Handler)

    app = RedisStreamingApplication(settings=settings, container=BadContainer)
    with pytest.raises(ConfigurationError, match=r"Handler\.handle: Provide\['nope'\]"):
        await app.start()
    assert built == []


async def test_health_readiness_and_liveness(settings: Settings) -> None:
    shown = settings.actuator.model_copy(update={"show_details": "always"})
    settings = settings.model_copy(update={"actuator": shown})
    app = RedisStreamingApplication(settings=settings, container=AppContainer)
    async with serving(app.asgi, started=False) as http:
        response = await http.get("/actuator/health/readiness")
        assert response.status_code == 503  # not started yet
        async with app.lifespan():
            health = (await http.get("/actuator/health")).json()
            assert health["status"] == "UP"
            assert set(health["components"]) == {"redis", "mq"}
            assert (await http.get("/actuator/health/readiness")).json() == {"status": "UP"}
            assert (await http.get("/actuator/health/liveness")).json() == {"status": "UP"}
            assert (await http.get("/actuator/health/redis")).json()["status"] == "UP"
            assert (await http.get("/actuator/health/nope")).status_code == 404
            links = (await http.get("/actuator")).json()["_links"]
            assert links["health"]["href"] == "/actuator/health"
        response = await http.get("/actuator/health/readiness")
        assert response.status_code == 503  # stopped


async def test_mounts_into_an_existing_fastapi_app(settings: Settings) -> None:
    from fastapi import FastAPI

    rs_app = RedisStreamingApplication(settings=settings, container=AppContainer)
    web = FastAPI(lifespan=rs_app.lifespan)
    web.include_router(rs_app.router)

    @web.post("/orders")
    async def place(order: Order) -> dict[str, str]:
        producer: Producer = await resolve(rs_app.container.producer)
        sent = await producer.send("orders", order, key=order.id)
        return {"id": sent.message_id or ""}

    async with serving(web) as http:
        assert (await http.get("/actuator/health")).json()["status"] == "UP"
        response = await http.post("/orders", json={"id": "o-5", "amount": 2.0})
        assert response.status_code == 200
        ledger: Ledger = await resolve(rs_app.container.ledger)
        await wait_until(lambda: any("o-5@" in e for e in ledger.entries), 10)
    assert not rs_app.running
