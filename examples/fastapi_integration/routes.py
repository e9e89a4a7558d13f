"""The shop's own HTTP API: place an order (published to the ``orders`` topic) and read its
status. Dependencies come from the starter's container."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from examples.fastapi_integration.orders import NewOrder, Order, OrderStatus, OrderStore
from redis_streaming import Producer
from redis_streaming_starter import resolve

router = APIRouter(prefix="/orders", tags=["orders"])


async def order_store(request: Request) -> OrderStore:
    store: OrderStore = await resolve(request.app.state.container.order_store)
    return store


async def producer(request: Request) -> Producer:
    sender: Producer = await resolve(request.app.state.container.producer)
    return sender


Store = Annotated[OrderStore, Depends(order_store)]


@router.post("", status_code=202)
async def place_order(
    new: NewOrder,
    response: Response,
    store: Store,
    producer: Annotated[Producer, Depends(producer)],
) -> OrderStatus:
    """Accept the order and publish it; a listener confirms it shortly after."""
    order = Order(id=uuid.uuid4().hex, **new.model_dump())
    status = OrderStatus(id=order.id, status="accepted")
    await store.save(status)
    await producer.send("orders", order, key=order.customer)  # one customer's orders in order
    response.headers["Location"] = f"/orders/{order.id}"
    return status


@router.get("/{order_id}")
async def get_order(order_id: str, store: Store) -> OrderStatus:
    """The order's status: ``accepted``, then ``confirmed`` with its total."""
    status = await store.get(order_id)
    if status is None:
        raise HTTPException(404, f"no order {order_id!r}; POST /orders to place one")
    return status
