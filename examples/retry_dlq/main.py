"""The payments application: ``python -m examples.retry_dlq`` (see README.md), or
``redis-streaming run examples.retry_dlq.main:app`` with REDIS_STREAMING_REDIS__URL set."""

from __future__ import annotations

from typing import Any

from examples.retry_dlq import payments
from examples.retry_dlq.payments import Payment
from redis_streaming_starter import RedisStreamingApplication, Settings, load_settings, resolve

EXPOSE = ["health", "info", "listeners", "topics", "dlq"]

PAYMENTS = [
    Payment(id="p-1", amount=25.0, currency="EUR"),  # settled on attempt 1
    Payment(id="p-2", amount=1500.0, currency="USD"),  # gateway timeout, settled on attempt 2
    Payment(id="p-3", amount=40.0, currency="CHF"),  # fails 3 times: dead letter, max_attempts
    Payment(id="p-4", amount=2200.0, currency="EUR"),  # gateway timeout, settled on attempt 2
    Payment(id="p-5", amount=90.0, currency="CHF"),  # fails 3 times: dead letter, max_attempts
]
# An old producer still sends the amount as text: not a Payment, dead letter `undecodable`.
LEGACY = {"id": "p-6", "amount": "twelve francs", "currency": "CHF"}


async def send_payments(container: Any) -> None:
    """Send the sample payments once, keyed by payment id."""
    producer = await resolve(container.producer)
    for payment in PAYMENTS:
        await producer.send("payments", payment, key=payment.id)
    await producer.send("payments", LEGACY, key=LEGACY["id"])


def create_app(settings: Settings | None = None) -> RedisStreamingApplication:
    """The application. ``settings`` default to the environment's, with this example's name
    and exposed endpoints; tests pass their own."""
    if settings is None:
        settings = load_settings(
            defaults={"app": {"name": "payments"}, "actuator": {"expose": EXPOSE}}
        )
    app = RedisStreamingApplication(
        settings=settings,
        listener_packages=["examples.retry_dlq.payments"],
    )
    app.runner(send_payments)

    @app.asgi.get("/payments")
    async def settled() -> dict[str, int]:
        """Settled payments: payment id -> the attempt that settled it."""
        return payments.SETTLED

    @app.asgi.put("/currencies/{code}")
    async def support_currency(code: str) -> list[str]:
        """Stands in for deploying the fix: the handler settles ``code`` from now on."""
        payments.SUPPORTED_CURRENCIES.add(code.upper())
        return sorted(payments.SUPPORTED_CURRENCIES)

    return app


app = create_app()
