"""examples/fastapi_integration: the shop's own routes publish and read orders, its listener
confirms them, and the actuator is served by the same FastAPI app and lifespan."""

from __future__ import annotations

from examples.fastapi_integration.listeners import confirm
from examples.fastapi_integration.main import create_api

from redis_streaming_starter.testing import AppTestFactory

# the listeners' details below
SETTINGS = {"app": {"name": "shop"}, "actuator": {"show_details": "always"}}


async def test_posted_order_is_confirmed_by_the_listener(rs_app: AppTestFactory) -> None:
    async with rs_app(create_api, settings=SETTINGS) as t:  # its lifespan starts the listener
        health = await t.http.get("/actuator/health")
        assert health.status_code == 200
        assert health.json()["status"] == "UP"
        listeners = health.json()["components"]["mq"]["details"]["listeners"]
        assert listeners["confirm"]["topic"] == "orders"

        tea = {"sku": "tea", "quantity": 2, "price": 4.5}
        cup = {"sku": "cup", "quantity": 1, "price": 3.25}
        order = {"customer": "ada", "items": [tea, cup]}
        placed = await t.http.post("/orders", json=order)
        assert placed.status_code == 202, placed.text
        accepted = placed.json()
        assert accepted["status"] == "accepted"
        assert placed.headers["Location"] == f"/orders/{accepted['id']}"
        [published] = t.published("orders")  # what the route sent, keyed by customer
        assert (published.id, t.publications("orders")[0].key) == (accepted["id"], "ada")

        await t.handled(confirm)
        status = (await t.http.get(placed.headers["Location"])).json()
        assert status == {"id": accepted["id"], "status": "confirmed", "total": 12.25}

        assert (await t.http.get("/orders/unknown")).status_code == 404
        empty = await t.http.post("/orders", json={"customer": "ada", "items": []})
        assert empty.status_code == 422
        readiness = await t.http.get("/actuator/health/readiness")
        assert readiness.json()["status"] == "UP"
        paths = (await t.http.get("/openapi.json")).json()["paths"]
        assert {"/orders", "/orders/{order_id}", "/actuator/health"} <= set(paths)
    assert not t.app.running
