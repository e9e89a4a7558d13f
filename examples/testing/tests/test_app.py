"""The checkout's tests: each on the session's server, in its own namespace, settings isolated."""

import pytest

from examples.testing.checkout import CardDeclined, CheckoutContainer, Order, Receipt, create_app
from examples.testing.listeners import checkout
from redis_streaming_starter.testing import AppTestFactory

ORDER = Order(id="o-1", customer="ada", amount=20.0)


async def test_an_order_is_charged_with_the_fee(rs_app: AppTestFactory) -> None:
    async with rs_app(create_app, settings={"checkout": {"fee_percent": 10}}) as t:
        await t.send("orders", ORDER, key="ada")
        await t.handled(checkout)
        assert t.published("receipts") == [Receipt(order="o-1", total=22.0, charge="ch-1")]


class Declining:
    async def charge(self, customer: str, amount: float) -> str:
        raise CardDeclined(f"{customer}: stolen card")


async def test_a_declined_card_is_dead_lettered(rs_app: AppTestFactory) -> None:
    async with rs_app(create_app, overrides={CheckoutContainer.gateway: Declining()}) as t:
        await t.send("orders", ORDER, key="ada")
        await t.handled(checkout, outcome="dead_lettered")
        [letter] = await t.dead_letters("orders")
        assert (letter.reason, letter.error) == ("non_retryable", "ada: stolen card")
        assert t.published("receipts") == []


async def test_the_shell_does_not_leak_in(
    rs_app: AppTestFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_STREAMING_CHECKOUT__FEE_PERCENT", "not a number")
    async with rs_app(create_app) as t:
        assert t.settings.checkout.fee_percent == 2.0
        assert (await t.http.get("/actuator/health")).json()["status"] == "UP"
