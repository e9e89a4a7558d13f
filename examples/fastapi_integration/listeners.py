"""The listener confirming orders: it runs inside the FastAPI application's process."""

from __future__ import annotations

from dependency_injector.wiring import Provide

from examples.fastapi_integration.orders import Order, OrderStatus, OrderStore, ShopContainer
from redis_streaming_starter import listener


@listener("orders", group="fulfilment")
async def confirm(order: Order, store: OrderStore = Provide[ShopContainer.order_store]) -> None:
    """Price the order and record it as confirmed."""
    total = round(sum(item.price * item.quantity for item in order.items), 2)
    await store.save(OrderStatus(id=order.id, status="confirmed", total=total))
