"""The application under restricted Redis users (security review F4): the minimal ACL that
docs/operations.md publishes (read from the page, so the page stays true), and a hardened user
without INFO (``-@dangerous``).

Each test creates a real ACL user on the suite's server, limited to its namespace's keys and
channels (``~<ns>:*``, ``&<ns>:*``), and deletes it afterwards.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from dependency_injector import providers

from redis_streaming import ConfigurationError, DeadLetter, Producer, Retry
from redis_streaming_starter import (
    Container,
    RedisStreamingApplication,
    Settings,
    listener,
    resolve,
)
from redis_streaming_starter.actuator.health import PING_CHECK
from tests.helpers import serving, wait_until

TOKEN = "acl-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"
HARDENED = "+@all -@dangerous +client|setname"  # the usual hardening: INFO is @dangerous


def documented_acl() -> str:
    """The command rules of the minimal ACL in docs/operations.md (its line starting '-@all')."""
    [rules] = re.findall(r"^\s*(-@all \S.*?)\s*\\?$", OPERATIONS.read_text(), re.MULTILINE)
    return str(rules)


class Shop:
    """Listeners: ``ok`` is paid at once, ``flaky`` on its second attempt (a Retry), ``bad``
    is dead-lettered until ``healed``."""

    def __init__(self) -> None:
        self.paid: list[str] = []
        self.attempts: dict[str, int] = {}
        self.healed = False

    @listener("orders", group="billing", id="bill")
    async def bill(self, order: dict[str, str]) -> None:
        n = self.attempts[order["id"]] = self.attempts.get(order["id"], 0) + 1
        if order["id"] == "flaky" and n == 1:
            raise Retry(after=0.05)
        if order["id"] == "bad" and not self.healed:
            raise DeadLetter("refused")
        self.paid.append(order["id"])


class ShopContainer(Container):
    shop = providers.Singleton(Shop)


@pytest.fixture
def acl_user(rs_server_url: str, rs_namespace: str) -> Iterator[Any]:
    """Creates users on the suite's server: ``make(rules)`` returns the URL of a new user with
    those command rules, limited to the test's namespace; all are deleted afterwards."""
    admin = redis.Redis.from_url(rs_server_url)
    names: list[str] = []

    def make(rules: str) -> str:
        name, password = f"app-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        admin.execute_command(
            "ACL", "SETUSER", name, "on", f">{password}", "resetkeys", f"~{rs_namespace}:*",
            "resetchannels", f"&{rs_namespace}:*", *rules.split(),
        )  # fmt: skip
        names.append(name)
        where = admin.connection_pool.connection_kwargs
        return f"redis://{name}:{password}@{where['host']}:{where['port']}/0"

    yield make
    for name in names:
        admin.execute_command("ACL", "DELUSER", name)
    admin.close()


def _settings(settings: Settings, url: str, **redis_section: Any) -> Settings:
    data = settings.model_dump()
    data["redis"] = {"url": url, **redis_section}
    data["actuator"] = {"expose": ["*"], "token": TOKEN, "show_details": "always"}
    data["registry"] = {"enabled": True, "heartbeat_interval_s": 0.5, "sweep_interval_s": 0.5}
    data["metrics"] = {"gauge_interval_s": 0.5}
    data["mq"]["default_partitions"] = 2
    return Settings.model_validate(data)


async def _run_the_shop(settings: Settings) -> dict[str, Any]:
    """Start the application, produce, consume, retry, dead-letter, replay, purge; returns the
    health body seen while it ran."""
    app = RedisStreamingApplication(settings=settings, container=ShopContainer)
    async with serving(app.asgi, "http://test/actuator") as http:
        shop: Shop = await resolve(app.container.shop)
        producer: Producer = await resolve(app.container.producer)
        for order in ("ok", "flaky", "bad"):
            await producer.send("orders", {"id": order}, key=order)
        await wait_until(lambda: sorted(shop.paid) == ["flaky", "ok"], 15, "ok and flaky paid")
        assert shop.attempts["flaky"] == 2

        async def dead_letters() -> list[dict[str, Any]]:
            page = await http.get("/topics/orders/dlq", headers=AUTH)
            assert page.status_code == 200, page.text
            return list(page.json()["entries"])

        async def one_dead_letter() -> bool:
            return len(await dead_letters()) == 1

        await wait_until(one_dead_letter, 15, "bad dead-lettered")
        shop.healed = True
        [entry] = await dead_letters()
        replay = await http.post(
            "/topics/orders/dlq/replay", json={"ids": [entry["id"]]}, headers=AUTH
        )
        assert replay.json() == {"replayed": 1}, replay.text
        await wait_until(lambda: "bad" in shop.paid, 15, "bad paid after the replay")
        assert (await http.delete("/topics/orders/dlq", headers=AUTH)).status_code == 200
        created = await http.post("/topics", json={"name": "audit", "partitions": 2}, headers=AUTH)
        assert created.status_code == 201, created.text
        assert (await http.delete("/topics/audit", headers=AUTH)).status_code == 204
        assert (await http.get("/services")).status_code == 200
        assert (await http.get("/prometheus")).status_code == 200
        health = await http.get("/health")
        assert health.status_code == 200, health.text
        assert (await http.get("/health/readiness")).status_code == 200
        return dict(health.json())


async def test_the_documented_minimal_acl_runs_everything(
    settings: Settings, acl_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = acl_user(documented_acl())
    health = await _run_the_shop(_settings(settings, url))  # redis.cluster unset: INFO cluster
    components = health["components"]
    assert {n: c["status"] for n, c in components.items()} == {
        "mq": "UP", "redis": "UP", "registry": "UP",
    }  # fmt: skip
    assert components["redis"]["details"]["version"]  # INFO server is allowed
    assert "NOPERM" not in caplog.text
    assert "no permissions" not in caplog.text


async def test_a_user_without_info_needs_redis_cluster_set(
    settings: Settings, acl_user: Any
) -> None:
    app = RedisStreamingApplication(settings=_settings(settings, acl_user(HARDENED)))
    with pytest.raises(ConfigurationError) as caught:
        await app.start()
    message = str(caught.value)
    assert "REDIS_STREAMING_REDIS__CLUSTER=false" in message
    assert "may not run INFO" in message
    assert "docs/operations.md" in message


async def test_a_user_without_info_runs_everything_with_cluster_false(
    settings: Settings, acl_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = acl_user(HARDENED)
    health = await _run_the_shop(_settings(settings, url, cluster=False))
    redis_node = health["components"]["redis"]
    assert redis_node == {
        "status": "UP", "details": {"version": None, "mode": None, "check": PING_CHECK},
    }  # fmt: skip
    assert health["components"]["mq"]["status"] == "UP"
    assert "no permissions" not in caplog.text
