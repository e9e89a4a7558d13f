"""``registry.enabled``: the application registers itself, heartbeats, reports a ``registry``
health component, serves ``/actuator/services``, and deregisters on graceful stop."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from redis_streaming import ConfigurationError
from redis_streaming.registry import (
    ServiceDiscovery,
    ServiceEventType,
    ServiceInstance,
    ServiceRegistry,
)
from redis_streaming.testing import free_port
from redis_streaming_starter import RedisStreamingApplication, Settings, resolve
from tests.helpers import FAST, wait_until


def _settings(settings: Settings, **registry: Any) -> Settings:
    data = settings.model_dump()
    data["registry"] = {"enabled": True, **FAST["registry"], **registry}
    data["actuator"] = {"expose": ["*"], "show_details": "always"}
    data["app"]["version"] = "1.2.3"
    return Settings.model_validate(data)


def _client(app: RedisStreamingApplication) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app.asgi), base_url="http://t")


async def test_application_registers_itself_and_deregisters_on_stop(settings: Settings) -> None:
    app = RedisStreamingApplication(
        settings=_settings(settings, metadata={"region": "eu"}, service="orders-svc")
    )
    async with app.lifespan():
        discovery: ServiceDiscovery = await resolve(app.container.discovery)
        [me] = await discovery.instances("orders-svc")
        assert me.instance_id == await resolve(app.container.instance_id)
        assert (me.host, me.port) == ("127.0.0.1", settings.app.port)
        assert me.metadata["region"] == "eu"
        assert me.metadata["version"] == "1.2.3"
        assert me.metadata["health_url"].endswith("/actuator/health/readiness")
        async with _client(app) as http:
            health = (await http.get("/actuator/health")).json()
            assert health["components"]["registry"]["status"] == "UP"
            assert health["components"]["registry"]["details"]["service"] == "orders-svc"
            services = (await http.get("/actuator/services")).json()["services"]
            assert services["orders-svc"] == {"instances": 1, "healthy": 1}
            one = await http.get("/actuator/services/orders-svc", params={"filter": "region==eu"})
            assert [i["instance_id"] for i in one.json()["instances"]] == [me.instance_id]
            none = await http.get("/actuator/services/orders-svc", params={"filter": "region==us"})
            assert none.json()["instances"] == []
            bad = await http.get("/actuator/services/orders-svc", params={"filter": "nonsense"})
            assert bad.status_code == 400
            assert "FIELD<op>VALUE" in bad.json()["detail"]
            bad_name = await http.get("/actuator/services/a b")
            assert bad_name.status_code == 400
        async with discovery.watch("orders-svc") as events:
            await app.stop()
            event = await asyncio.wait_for(anext(events), 5)
        assert event.type is ServiceEventType.REMOVED
        assert event.instance_id == me.instance_id
        assert await discovery.instances("orders-svc") == []  # at once, not after the ttl


async def test_registry_component_absent_when_disabled(settings: Settings) -> None:
    shown = settings.actuator.model_copy(update={"show_details": "always"})
    app = RedisStreamingApplication(settings=settings.model_copy(update={"actuator": shown}))
    async with app.lifespan(), _client(app) as http:
        body = (await http.get("/actuator/health")).json()
        assert "registry" not in body["components"]


async def test_health_checker_marks_a_failing_instance_unhealthy(settings: Settings) -> None:
    app = RedisStreamingApplication(settings=_settings(settings, health_checks=True))
    async with app.lifespan():
        registry: ServiceRegistry = await resolve(app.container.registry)
        discovery: ServiceDiscovery = await resolve(app.container.discovery)
        dead = ServiceInstance(
            service="payments",
            instance_id="p-1",
            host="127.0.0.1",
            port=free_port(),  # nothing listens there
            metadata={"health_check": "tcp"},
        )
        await registry.register(dead)

        async def healthy_ids() -> list[str]:
            return [i.instance_id for i in await discovery.instances("payments")]

        async def none_healthy() -> bool:
            return await healthy_ids() == []

        await wait_until(none_healthy, 5, "the instance marked unhealthy")
        [seen] = await discovery.instances("payments", healthy_only=False)
        assert seen.healthy is False
        await registry.deregister(dead)


def test_random_app_port_needs_an_explicit_registry_port(settings: Settings) -> None:
    data = _settings(settings).model_dump()
    data["app"]["port"] = 0
    app = RedisStreamingApplication(settings=Settings.model_validate(data))
    with pytest.raises(ConfigurationError, match="REDIS_STREAMING_REGISTRY__PORT"):
        app.container.own_instance()
