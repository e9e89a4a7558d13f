"""examples/fastapi_integration: the shop's own routes publish and read orders, its listener
confirms them, and the actuator is served by the same FastAPI app and lifespan."""

from __future__ import annotations

from examples.fastapi_integration.main import create_api

from redis_streaming_starter import Settings
from tests.helpers import fast_settings, serving, wait_until


def _settings(url: str, namespace: str) -> Settings:
    return fast_settings(
        url,
        namespace,
        app={"name": "shop"},
        actuator={"show_details": "always"},  # the listeners' details below
    )


async def test_posted_order_is_confirmed_by_the_listener(
    rs_server_url: str, rs_namespace: str
) -> None:
    api = create_api(_settings(rs_server_url, rs_namespace))
    async with serving(api) as http:
        health = await http.get("/actuator/health")
        assert health.status_code == 200
        assert health.json()["status"] == "UP"
        listeners = health.json()["components"]["mq"]["details"]["listeners"]
        assert listeners["confirm"]["topic"] == "orders"

        tea = {"sku": "tea", "quantity": 2, "price": 4.5}
        cup = {"sku": "cup", "quantity": 1, "price": 3.25}
        order = {"customer": "ada", "items": [tea, cup]}
        placed = await http.post("/orders", json=order)
        assert placed.status_code == 202, placed.text
        accepted = placed.json()
        assert accepted["status"] == "accepted"
        assert placed.headers["Location"] == f"/orders/{accepted['id']}"

        async def confirmed() -> bool:
            response = await http.get(placed.headers["Location"])
            assert response.status_code == 200, response.text
            return bool(response.json()["status"] == "confirmed")

        await wait_until(confirmed, 10, "the order confirmed by the listener")
        status = (await http.get(f"/orders/{accepted['id']}")).json()
        assert status == {"id": accepted["id"], "status": "confirmed", "total": 12.25}

        assert (await http.get("/orders/unknown")).status_code == 404
        assert (
            await http.post("/orders", json={"customer": "ada", "items": []})
        ).status_code == 422
        readiness = await http.get("/actuator/health/readiness")
        assert readiness.json()["status"] == "UP"
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert {"/orders", "/orders/{order_id}", "/actuator/health"} <= set(paths)
    assert not api.state.streaming.running
