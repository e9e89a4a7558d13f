"""The catalog service: registers itself and answers price requests over HTTP.

Run several (each with its own REDIS_STREAMING_APP__PORT and the same REDIS_STREAMING_REDIS__URL):
``redis-streaming run examples.registry.catalog:app``.
"""

from __future__ import annotations

import zlib

from redis_streaming_starter import RedisStreamingApplication, load_settings, resolve

app = RedisStreamingApplication(
    settings=load_settings(  # defaults: the environment can change each of them
        defaults={
            "app": {"name": "catalog"},
            "registry": {"enabled": True, "metadata": {"region": "eu"}},
            "actuator": {"expose": ["health", "info", "services"]},
        }
    )
)


@app.asgi.get("/prices/{sku}")
async def price(sku: str) -> dict[str, object]:
    """A made-up but stable price, and which instance answered."""
    instance_id = await resolve(app.container.instance_id)
    return {"sku": sku, "price": (zlib.crc32(sku.encode()) % 10_000) / 100, "servedBy": instance_id}
