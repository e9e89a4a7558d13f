"""Two groups on one topic: each sees every order."""

from __future__ import annotations

import logging

from pydantic import BaseModel

from redis_streaming import Message
from redis_streaming_starter import listener

log = logging.getLogger("quickstart")


class Order(BaseModel):
    id: str
    customer: str
    amount: float


class Totals:
    billed = 0
    revenue = 0.0
    shipped = 0


@listener("orders", group="billing")
async def bill(order: Order, message: Message) -> None:
    """Bill each order; a message's key is its customer, so one customer's orders stay in order."""
    Totals.billed += 1
    Totals.revenue += order.amount
    if Totals.billed % 25 == 0:
        log.info(
            "billing: %d orders billed, revenue %.2f (last %s from partition %d)",
            Totals.billed, Totals.revenue, order.id, message.partition,
        )  # fmt: skip


@listener("orders", group="shipping")
async def ship(order: Order) -> None:
    """Ship each order (another group: it receives every order too)."""
    Totals.shipped += 1
    if Totals.shipped % 25 == 0:
        log.info("shipping: %d orders shipped", Totals.shipped)
