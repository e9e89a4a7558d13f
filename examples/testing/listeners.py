"""The checkout's listener: charge the order plus the fee, publish the receipt."""

from __future__ import annotations

from dependency_injector.wiring import Provide

from examples.testing.checkout import (
    CardDeclined,
    CheckoutContainer,
    CheckoutSettings,
    Order,
    PaymentGateway,
    Receipt,
)
from redis_streaming import Producer, RetryPolicy
from redis_streaming_starter import listener

RETRY = RetryPolicy(max_attempts=3, initial_backoff_s=0.1, non_retryable=(CardDeclined,))


@listener("orders", group="checkout", retry=RETRY)
async def checkout(
    order: Order,
    gateway: PaymentGateway = Provide[CheckoutContainer.gateway],
    producer: Producer = Provide[CheckoutContainer.producer],
    settings: CheckoutSettings = Provide[CheckoutContainer.settings],
) -> None:
    """A declined card is dead-lettered at once; a gateway error is retried."""
    total = round(order.amount * (1 + settings.checkout.fee_percent / 100), 2)
    charge = await gateway.charge(order.customer, total)
    receipt = Receipt(order=order.id, total=total, charge=charge)
    await producer.send("receipts", receipt, key=order.customer)
