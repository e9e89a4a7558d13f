"""The quickstart application: `make run` (or `redis-streaming run examples.quickstart.main:app`).

Without REDIS_STREAMING_REDIS__URL it starts an embedded Valkey. Then open
http://127.0.0.1:8080/actuator/health.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from examples.quickstart.listeners import Order
from redis_streaming_starter import RedisStreamingApplication, resolve

app = RedisStreamingApplication(listener_packages=["examples.quickstart.listeners"])
log = logging.getLogger("quickstart")


@app.runner
async def place_orders(container: Any) -> None:
    """Send an order every 100 ms, keyed by customer."""
    producer = await resolve(container.producer)
    n = 0
    while True:
        n += 1
        customer = f"customer-{random.randint(1, 20)}"
        order = Order(id=f"order-{n}", customer=customer, amount=round(random.uniform(5, 500), 2))
        await producer.send("orders", order, key=customer)
        if n % 50 == 0:
            log.info("producer: %d orders sent", n)
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    app.run()
