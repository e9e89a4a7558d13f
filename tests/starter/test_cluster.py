"""The starter on a Redis Cluster: client detection from settings, the application and its
actuator (health reports the cluster's state) against the suite's local cluster."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as ClusterClient

from redis_streaming import ConfigurationError, Producer
from redis_streaming.cluster import plain_url
from redis_streaming.testing import free_port
from redis_streaming_starter import RedisStreamingApplication, Settings, load_settings, resolve
from redis_streaming_starter.autoconfigure.redis import connect
from tests.helpers import moved_replies, wait_until
from tests.starter.apps.orders import listeners
from tests.starter.apps.orders.services import AppContainer, Order


def _settings(settings: Settings, url: str, cluster: bool | None = None) -> Settings:
    redis = settings.redis.model_copy(update={"url": url, "cluster": cluster})
    return settings.model_copy(update={"redis": redis})


@pytest.mark.parametrize(
    ("which", "cluster", "expected"),
    [
        ("cluster", None, ClusterClient),  # redis+cluster:// URL
        ("cluster-node", None, ClusterClient),  # redis:// of a node: INFO cluster says so
        ("cluster-node", True, ClusterClient),
        ("server", None, aioredis.Redis),  # INFO cluster: cluster_enabled:0
        ("server", False, aioredis.Redis),
    ],
)
async def test_the_client_follows_redis_cluster_or_detects_it(
    settings: Settings,
    rs_server_url: str,
    rs_cluster_url: str,
    which: str,
    cluster: bool | None,
    expected: type,
) -> None:
    url = {
        "cluster": rs_cluster_url,
        "cluster-node": plain_url(rs_cluster_url),
        "server": rs_server_url,
    }[which]
    client = await connect(_settings(settings, url, cluster), url)
    try:
        assert type(client) is expected
        assert await client.ping()
    finally:
        await client.aclose()


async def test_the_cluster_client_knows_the_slot_map_before_the_application_uses_it(
    settings: Settings, rs_cluster_url: str
) -> None:
    """A lazily loading redis-py cluster client sends the first commands of many tasks to random
    nodes (MOVED); the starter's client has loaded the map when ``connect`` returns."""
    before = await moved_replies(rs_cluster_url)
    client = await connect(_settings(settings, rs_cluster_url), rs_cluster_url)
    try:
        await asyncio.gather(*(client.hgetall(f"first:{{{n}}}") for n in range(60)))
    finally:
        await client.aclose()
    assert await moved_replies(rs_cluster_url) == before


async def test_cluster_true_on_a_plain_server_says_how_to_fix_it(
    settings: Settings, rs_server_url: str
) -> None:
    with pytest.raises(ConfigurationError, match="REDIS_STREAMING_REDIS__CLUSTER=false"):
        await connect(_settings(settings, rs_server_url, True), rs_server_url)


async def test_an_unreachable_cluster_does_not_stop_the_start(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}"
    client = await connect(_settings(settings, url, True), url)
    try:
        assert isinstance(client, ClusterClient)
        assert "unreachable" in caplog.text
    finally:
        await client.aclose()


def test_contradicting_settings_say_how_to_fix_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_STREAMING_REDIS__CLUSTER", "true")
    monkeypatch.delenv("REDIS_STREAMING_REDIS__URL", raising=False)
    with pytest.raises(ConfigurationError, match="REDIS_STREAMING_REDIS__URL"):
        load_settings()
    monkeypatch.setenv("REDIS_STREAMING_REDIS__CLUSTER", "false")
    monkeypatch.setenv("REDIS_STREAMING_REDIS__URL", "redis+cluster://127.0.0.1:7000")
    with pytest.raises(ConfigurationError, match="drop '\\+cluster'"):
        load_settings()


async def test_an_application_on_a_cluster(settings: Settings, rs_cluster_url: str) -> None:
    listeners.received.clear()
    settings = _settings(settings, plain_url(rs_cluster_url))  # detected from the server
    settings = settings.model_copy(
        update={
            "actuator": settings.actuator.model_copy(
                update={"expose": ["health", "topics"], "show_details": "always"}
            )
        }
    )
    app = RedisStreamingApplication(
        settings=settings, container=AppContainer, listener_packages=["tests.starter.apps.orders"]
    )
    async with app.asgi.router.lifespan_context(app.asgi):
        assert isinstance(app.redis, ClusterClient)
        producer: Producer = await resolve(app.container.producer)
        for n in range(12):
            await producer.send("orders", Order(id=f"o-{n}", amount=n), key=f"c-{n}")
        await wait_until(
            lambda: sum(name == "bill" for name, _ in listeners.received) == 12, 15, "12 bills"
        )
        transport = httpx.ASGITransport(app=app.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            health = (await http.get("/actuator/health")).json()
            redis = health["components"]["redis"]
            assert redis["status"] == "UP"
            details = redis["details"]
            assert (details["mode"], details["clusterState"]) == ("cluster", "ok")
            assert (details["slotsOk"], details["knownNodes"]) == (16384, 3)
            assert len(details["primaries"]) == 3
            topic = (await http.get("/actuator/topics/orders")).json()
            assert sum(p["length"] for p in topic["partitions"]) == 12
    listeners.received.clear()
