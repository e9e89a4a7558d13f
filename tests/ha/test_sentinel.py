"""redis.sentinel: the settings, the Sentinel-managed client the starter builds (what it says
when a setting is wrong), the redis health component, secrets in /actuator/env, and the CLI,
against a master, two replicas and three Sentinels that all require passwords."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from redis_streaming import ConfigurationError
from redis_streaming.testing import SentinelGroup, free_port
from redis_streaming_starter import RedisStreamingApplication, Settings, load_settings
from redis_streaming_starter.autoconfigure.redis import connect, embedded_server
from redis_streaming_starter.masking import MASK
from tests.helpers import serving
from tests.starter.support import cli

DATA_PASSWORD = "data-secret-1"
SENTINEL_PASSWORD = "sentinel-secret-2"


@pytest.fixture(scope="module")
def group() -> Iterator[SentinelGroup]:
    servers = SentinelGroup(password=DATA_PASSWORD, sentinel_password=SENTINEL_PASSWORD)
    with servers:
        yield servers


def settings_for(section: dict[str, Any], **sections: Any) -> Settings:
    return load_settings(isolated=True, redis={"sentinel": section}, **sections)


# -- settings ---------------------------------------------------------------------------------


def test_the_section_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_STREAMING_REDIS__SENTINEL__NODES", "s1:26379, s2:26380,[::1]:1")
    monkeypatch.setenv("REDIS_STREAMING_REDIS__SENTINEL__MASTER_NAME", "orders")
    monkeypatch.setenv("REDIS_STREAMING_REDIS__SENTINEL__SENTINEL_PASSWORD", "pw")
    monkeypatch.delenv("REDIS_STREAMING_REDIS__URL", raising=False)
    sentinel = load_settings().redis.sentinel
    assert sentinel is not None
    assert sentinel.addresses() == [("s1", 26379), ("s2", 26380), ("::1", 1)]
    assert sentinel.master_name == "orders"
    assert sentinel.sentinel_password is not None
    assert "pw" not in repr(sentinel)


@pytest.mark.parametrize(
    ("redis", "says"),
    [
        (
            {"url": "redis://h:6379", "sentinel": {"nodes": "s:1", "master_name": "m"}},
            "redis.url and redis.sentinel are both set",
        ),
        ({"sentinel": {"nodes": "s1", "master_name": "m"}}, "is not host:port"),
        ({"sentinel": {"nodes": "s1:99999", "master_name": "m"}}, "is not host:port"),
        ({"sentinel": {"nodes": "s1:1"}}, "MASTER_NAME: Field required"),
        (
            {
                "url": "redis://h:1",
                "cluster": True,
                "sentinel": {"nodes": "s:1", "master_name": "m"},
            },
            "redis.url and redis.sentinel",
        ),
        (
            {"cluster": False, "sentinel": {"nodes": "s:1", "master_name": "m", "db": -1}},
            "SENTINEL__DB",
        ),
        (
            {"sentinel": {"nodes": "s:1", "master_name": "m"}, "tls": {"verify": "none"}},
            "TLS to Sentinel and the servers it manages is not supported",
        ),
    ],
)
def test_wrong_settings_say_what_to_fix(redis: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        load_settings(isolated=True, redis=redis)


def test_sentinel_starts_no_embedded_server() -> None:
    settings = settings_for({"nodes": "127.0.0.1:1", "master_name": "m"})
    assert list(embedded_server(settings)) == [""]


# -- the client -------------------------------------------------------------------------------


async def test_the_client_reaches_the_master(group: SentinelGroup) -> None:
    client = await connect(settings_for(group.settings()), "")
    try:
        role = await client.execute_command("ROLE")
        assert role[0] == b"master"
        assert (await client.info("server"))["tcp_port"] == group.master_node().port
        assert len(role[2]) == 2  # both replicas
        assert await client.set("written", 1)
    finally:
        await client.delete("written")
        await client.aclose()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"master_name": "nope"}, r"monitor no master named 'nope' \(they monitor: rs-master\)"),
        ({"sentinel_password": "wrong"}, "SENTINEL_PASSWORD"),
        ({"sentinel_password": None}, "SENTINEL_PASSWORD"),
        ({"password": "wrong"}, "REDIS_STREAMING_REDIS__SENTINEL__USERNAME and __PASSWORD"),
    ],
)
async def test_a_wrong_setting_fails_the_start_saying_which(
    group: SentinelGroup, change: dict[str, Any], says: str
) -> None:
    section = {**group.settings(), **change}
    with pytest.raises(ConfigurationError, match=says) as caught:
        await connect(settings_for(section), "")
    for secret in (DATA_PASSWORD, SENTINEL_PASSWORD, "wrong"):
        assert secret not in str(caught.value)


async def test_unreachable_sentinels_do_not_stop_the_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "redis_streaming_starter")
    section = {"nodes": [f"127.0.0.1:{free_port()}"], "master_name": "m", "socket_timeout_s": 0.2}
    client = await connect(settings_for(section), "")
    try:
        assert "starting anyway" in caplog.text
    finally:
        await client.aclose()


# -- the application ----------------------------------------------------------------------


async def test_health_shows_the_master_and_its_replicas_and_env_masks_the_passwords(
    group: SentinelGroup, rs_namespace: str
) -> None:
    settings = settings_for(
        group.settings(),
        mq={"namespace": rs_namespace},
        actuator={"show_details": "always", "show_values": "always", "expose": ["health", "env"]},
    )
    app = RedisStreamingApplication(settings=settings)
    async with serving(app.asgi) as http:
        redis = (await http.get("/actuator/health/redis")).json()
        env = (await http.get("/actuator/env")).text
        one = (await http.get("/actuator/env/redis.sentinel.sentinel_password")).json()
    details = redis["details"]
    assert redis["status"] == "UP"
    assert (details["mode"], details["masterName"]) == ("sentinel", "rs-master")
    assert details["master"] == group.master_node().name
    replicas = sorted(r["address"] for r in details["replicas"])
    assert replicas == sorted(n.name for n in group.current_replicas())
    assert all(r["lagBytes"] >= 0 for r in details["replicas"])
    assert DATA_PASSWORD not in env
    assert SENTINEL_PASSWORD not in env
    assert "rs-master" in env  # values are shown, only the secrets are not
    assert one["property"]["value"] == MASK


def test_the_cli_health_command(
    group: SentinelGroup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_STREAMING_REDIS__URL", raising=False)
    monkeypatch.setenv("REDIS_STREAMING_REDIS__SENTINEL__NODES", ",".join(group.sentinel_nodes))
    monkeypatch.setenv("REDIS_STREAMING_REDIS__SENTINEL__MASTER_NAME", group.master_name)
    monkeypatch.setenv("REDIS_STREAMING_REDIS__SENTINEL__PASSWORD", DATA_PASSWORD)
    monkeypatch.setenv("REDIS_STREAMING_REDIS__SENTINEL__SENTINEL_PASSWORD", SENTINEL_PASSWORD)
    code, out, _ = cli(capsys, "health")
    assert code == 0, out
    assert out.startswith("UP  master 'rs-master' via Sentinels 127.0.0.1:")
    assert DATA_PASSWORD not in out


async def test_the_pool_waits_for_a_free_connection(group: SentinelGroup) -> None:
    """As the plain client's pool: more concurrent commands than connections wait (up to the
    socket timeout) rather than failing with "Too many connections"."""
    settings = settings_for(group.settings())
    settings = settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"max_connections": 2})}
    )
    client = await connect(settings, "")
    try:
        replies = await asyncio.gather(*(client.blpop(["rs-nothing"], 0.2) for _ in range(6)))
        assert replies == [None] * 6
    finally:
        await client.aclose()


def sentinel_clients(group: SentinelGroup) -> int:
    """Connections to the Sentinels, the one asking included."""
    total = 0
    for node in group.sentinels:
        client = node.client()
        try:
            total += len(client.client_list())
        finally:
            client.close()
    return total


async def test_closing_the_client_closes_its_sentinel_connections(group: SentinelGroup) -> None:
    before = sentinel_clients(group)
    client = await connect(settings_for(group.settings()), "")
    await client.ping()
    assert sentinel_clients(group) > before
    await client.aclose()
    assert sentinel_clients(group) == before


def test_a_group_that_fails_to_start_stops_every_process_it_started() -> None:
    servers = SentinelGroup(down_after_ms=0)  # the Sentinels reject their config
    with pytest.raises(ConfigurationError, match="negative or zero time parameter"):
        servers.start()
    processes = [*servers.nodes, *servers.sentinels]
    assert all(not node.running for node in processes)
    assert all(not node.dir.exists() for node in processes)


async def test_health_of_a_user_without_info_and_role(group: SentinelGroup) -> None:
    """Hardened ACLs drop -@dangerous (INFO, ROLE): health is still UP with the master's
    address, and the replicas the Sentinels know (without offsets)."""
    from redis_streaming_starter.actuator.health import redis_health

    admin = group.master_node().client()
    admin.execute_command(
        "ACL", "SETUSER", "limited", "on", ">limited-pw", "~*", "+@all", "-@dangerous"
    )
    section = {**group.settings(), "username": "limited", "password": "limited-pw"}
    client = await connect(settings_for(section), "")
    try:
        health = await redis_health(lambda: client)()
    finally:
        await client.aclose()
        admin.execute_command("ACL", "DELUSER", "limited")
        admin.close()
    assert health.status == "UP", health.details
    assert health.details["version"] is None
    assert health.details["master"] == group.master_node().name
    assert sorted(r["address"] for r in health.details["replicas"]) == sorted(
        n.name for n in group.current_replicas()
    )
