from __future__ import annotations

from dependency_injector import providers
from pydantic import BaseModel

from redis_streaming import Message
from redis_streaming_starter import Container, listener


class Order(BaseModel):
    id: str
    amount: float


class Greeter:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def greet(self, name: str) -> str:
        return f"{self.prefix} {name}"


class Ledger:
    """Provided by the container, with its own dependency and two listener methods."""

    def __init__(self, greeter: Greeter) -> None:
        self.greeter = greeter
        self.entries: list[str] = []

    @listener("orders", group="ledger")
    async def record(self, order: Order, message: Message) -> None:
        self.entries.append(self.greeter.greet(f"{order.id}@{message.partition}"))

    @listener("refunds", group="ledger", id="ledger-refunds")
    def refund(self, order: Order) -> None:  # a plain method runs in a worker thread
        self.entries.append(self.greeter.greet(f"refund {order.id}"))


class AppContainer(Container):
    greeter = providers.Singleton(Greeter, prefix="hello")
    ledger = providers.Singleton(Ledger, greeter=greeter)
