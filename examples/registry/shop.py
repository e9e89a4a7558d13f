"""The shop service: finds catalog instances through the registry (round robin over the healthy
ones) and asks them for prices.

``redis-streaming run examples.registry.shop:app``, then ``curl localhost:<port>/quote/sku-1``.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

from fastapi import HTTPException

from redis_streaming.registry import ServiceDiscovery
from redis_streaming_starter import RedisStreamingApplication, load_settings, resolve

app = RedisStreamingApplication(
    settings=load_settings(  # defaults: the environment can change each of them
        defaults={
            "app": {"name": "shop"},
            "registry": {"enabled": True},
            "actuator": {"expose": ["health", "info", "services"]},
        }
    )
)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@app.asgi.get("/quote/{sku}")
async def quote(sku: str) -> dict[str, Any]:
    """Price of ``sku`` from one catalog instance chosen round robin."""
    discovery: ServiceDiscovery = await resolve(app.container.discovery)
    instance = await discovery.choose("catalog", strategy="round_robin")
    if instance is None:
        raise HTTPException(503, "no healthy catalog instance is registered; start one")
    try:
        body = await asyncio.to_thread(_get_json, f"{instance.url}/prices/{sku}")
    except OSError as exc:
        raise HTTPException(502, f"catalog {instance.instance_id} did not answer: {exc}") from None
    return {"sku": sku, "price": body["price"], "catalog": body["servedBy"]}
