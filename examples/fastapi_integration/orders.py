"""The orders feature: what clients post, the status the shop records, where it keeps it, and
the container providing it."""

from __future__ import annotations

from typing import Any, Literal

from dependency_injector import providers
from pydantic import BaseModel, Field

from redis_streaming_starter import Container


class Item(BaseModel):
    sku: str
    quantity: int = Field(gt=0)
    price: float = Field(ge=0)


class NewOrder(BaseModel):
    customer: str
    items: list[Item] = Field(min_length=1)


class Order(NewOrder):
    id: str


class OrderStatus(BaseModel):
    id: str
    status: Literal["accepted", "confirmed"]
    total: float | None = None


class OrderStore:
    """Order statuses in a Redis hash (stands in for your database)."""

    def __init__(self, redis: Any, namespace: str) -> None:
        self.redis = redis
        self.key = f"{namespace}:shop-example:orders"

    async def save(self, status: OrderStatus) -> None:
        await self.redis.hset(self.key, status.id, status.model_dump_json())

    async def get(self, order_id: str) -> OrderStatus | None:
        raw = await self.redis.hget(self.key, order_id)
        return None if raw is None else OrderStatus.model_validate_json(raw)


class ShopContainer(Container):
    """The starter's container plus the shop's own providers."""

    order_store = providers.Singleton(
        OrderStore, Container.redis, Container.settings.provided.mq.namespace
    )
