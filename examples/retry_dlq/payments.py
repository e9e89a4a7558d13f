"""The settlement listener: a gateway that times out now and then, and a bug for CHF payments."""

from __future__ import annotations

import logging

from pydantic import BaseModel

from redis_streaming import Message, RetryPolicy
from redis_streaming_starter import listener

log = logging.getLogger("payments")

# The bug: CHF is missing, so CHF payments fail on every attempt until it is added (in the
# running example: PUT /currencies/CHF, which stands in for deploying the fix).
SUPPORTED_CURRENCIES = {"EUR", "USD"}

# Stands in for your database: payment id -> the attempt that settled it.
SETTLED: dict[str, int] = {}

# Three deliveries in all: a retry after about 0.5 s, another after about 1 s, then the DLQ.
RETRY = RetryPolicy(max_attempts=3, initial_backoff_s=0.5, multiplier=2.0, max_backoff_s=10.0)


class Payment(BaseModel):
    id: str
    amount: float
    currency: str


class GatewayTimeout(Exception):
    """The payment gateway did not answer in time; the next attempt usually goes through."""


class UnsupportedCurrency(Exception):
    """The handler cannot settle this currency; retrying does not help, fixing the code does."""


@listener("payments", group="settlement", retry=RETRY)
async def settle(payment: Payment, message: Message) -> None:
    """Settle a payment. Raising schedules a retry with backoff (the partition moves on
    meanwhile); after ``RETRY.max_attempts`` the message is dead-lettered with reason
    ``max_attempts``. A payload that is not a ``Payment`` never gets here: it is
    dead-lettered at once with reason ``undecodable``."""
    if payment.currency not in SUPPORTED_CURRENCIES:
        raise UnsupportedCurrency(f"cannot settle {payment.currency} payments")
    if payment.amount >= 1000 and message.attempt == 1:
        # large amounts go through a slow fraud check: the first call times out
        raise GatewayTimeout(f"the gateway timed out settling {payment.id}")
    SETTLED[payment.id] = message.attempt
    log.info("settled %s: %.2f %s on attempt %d", payment.id, payment.amount,
             payment.currency, message.attempt)  # fmt: skip
