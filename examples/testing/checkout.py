"""The checkout: orders in, a card charged with the shop's fee, a receipt out. Its own settings
section (``checkout``), its own dependency (the payment gateway) in its own container."""

from __future__ import annotations

import itertools

from dependency_injector import providers
from pydantic import BaseModel, ConfigDict, Field

from redis_streaming_starter import Container, RedisStreamingApplication, Settings, load_settings


class Order(BaseModel):
    id: str
    customer: str
    amount: float


class Receipt(BaseModel):
    order: str
    total: float
    charge: str


class CheckoutSection(BaseModel):
    """The ``checkout`` section: ``REDIS_STREAMING_CHECKOUT__*``, ``checkout:`` in YAML."""

    model_config = ConfigDict(extra="forbid")

    fee_percent: float = Field(2.0, ge=0, description="Added to every order's amount.")
    card_limit: float = Field(1000.0, gt=0, description="Larger totals are declined.")


class CheckoutSettings(Settings):
    """The starter's sections plus ``checkout``."""

    checkout: CheckoutSection = Field(default_factory=CheckoutSection)


class CardDeclined(Exception):
    """The card was refused: retrying does not help."""


class PaymentGateway:
    """Stands in for the payment provider's HTTP client: charges are numbered ``ch-1``,
    ``ch-2``...; totals over ``checkout.card_limit`` are declined."""

    def __init__(self, settings: CheckoutSettings) -> None:
        self.limit = settings.checkout.card_limit
        self._numbers = itertools.count(1)

    async def charge(self, customer: str, amount: float) -> str:
        if amount > self.limit:
            raise CardDeclined(f"{customer}: {amount:.2f} is over the card limit")
        return f"ch-{next(self._numbers)}"


class CheckoutContainer(Container):
    """The starter's container plus the gateway."""

    gateway = providers.Singleton(PaymentGateway, settings=Container.settings)


def create_app(settings: CheckoutSettings | None = None) -> RedisStreamingApplication:
    """The application; ``settings`` default to the environment's (tests give their own)."""
    return RedisStreamingApplication(
        settings=settings or load_settings(settings_cls=CheckoutSettings),
        container=CheckoutContainer,
        listener_packages=["examples.testing.listeners"],
    )
