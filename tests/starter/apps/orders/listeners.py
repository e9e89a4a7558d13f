from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide

from redis_streaming import Message
from redis_streaming_starter import listener
from tests.starter.apps.orders.services import AppContainer, Greeter, Order

received: list[tuple[str, Any]] = []


@listener("orders", group="billing")
async def bill(order: Order, message: Message) -> None:
    received.append(("bill", (order, message.key)))


@listener("texts")
async def text(body: str) -> None:
    received.append(("text", body))


@listener("blobs")
def blob(body: bytes) -> None:
    received.append(("blob", body))


@listener("events", group="greeting")
async def greet(event: dict[str, Any], greeter: Greeter = Provide[AppContainer.greeter]) -> None:
    received.append(("greet", greeter.greet(event["name"])))


@listener("envelopes")
async def envelope(message: Message) -> None:
    received.append(("envelope", message.payload))
