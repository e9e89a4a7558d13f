"""TLS: ``rediss://`` with the ``redis.tls`` settings, against servers that listen on TLS only
(skipped when the server binary has no TLS): produce and consume with the server's certificate
verified, a wrong CA or host name or a missing client certificate is a clear error naming the
setting, ``verify=none`` and ``check_hostname=false`` do what they say, and a Redis Cluster
over TLS works the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redis_streaming import ConfigurationError, MQOptions, Producer, RedisUnavailable
from redis_streaming.cluster import is_cluster
from redis_streaming.testing import RedisCluster
from redis_streaming.testing.tls import TlsFiles, TlsRedisServer, tls_unsupported
from redis_streaming_starter import RedisStreamingApplication, Settings
from redis_streaming_starter.autoconfigure.redis import connect
from redis_streaming_starter.testing import app_test
from tests.ha import ticks_app
from tests.helpers import fast_settings, wait_until


@pytest.fixture(scope="module")
def with_tls() -> None:
    """Skips the test when the server binary has no TLS built in."""
    reason = tls_unsupported()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    try:
        return TlsFiles.create(tmp_path_factory.mktemp("tls"))
    except ConfigurationError as exc:  # no openssl command
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def other_ca(tls_files: TlsFiles, tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA that signed none of the servers' certificates."""
    return TlsFiles.create(tmp_path_factory.mktemp("other"), name="another CA")


def started(server: TlsRedisServer) -> Iterator[TlsRedisServer]:
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def server(with_tls: None, tls_files: TlsFiles) -> Iterator[TlsRedisServer]:
    yield from started(TlsRedisServer(tls_files))


@pytest.fixture(scope="module")
def mtls_server(with_tls: None, tls_files: TlsFiles) -> Iterator[TlsRedisServer]:
    """Requires a client certificate its CA signed (``tls-auth-clients yes``)."""
    yield from started(TlsRedisServer(tls_files, auth_clients="yes"))


def settings(url: str, namespace: str, **tls: Any) -> Settings:
    values = {k: str(v) if isinstance(v, Path) else v for k, v in tls.items()}
    return fast_settings(url, namespace, redis={"tls": values})


async def ping(settings: Settings) -> bool:
    client = await connect(settings, str(settings.redis.url))
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


async def test_an_application_produces_and_consumes_over_tls_with_verification(
    server: TlsRedisServer, tls_files: TlsFiles
) -> None:
    ticks_app.handled.clear()
    app = RedisStreamingApplication(listener_packages=["tests.ha.ticks_app"])
    values = {"redis": {"tls": {"ca_file": str(tls_files.ca_cert)}}}
    async with app_test(app, url=server.url, settings=values) as t:
        assert t.settings.redis.tls.verify == "required"
        assert t.settings.redis.tls.check_hostname  # the certificate names 127.0.0.1
        await t.send("ticks", 7)
        await wait_until(lambda: 7 in ticks_app.handled, 10, "the message handled")


async def test_a_wrong_ca_is_an_error_naming_the_ca_setting(
    server: TlsRedisServer, other_ca: TlsFiles, rs_namespace: str
) -> None:
    wrong = settings(server.url, rs_namespace, ca_file=other_ca.ca_cert)
    with pytest.raises(ConfigurationError, match="failed verification") as raised:
        await ping(wrong)
    assert "redis.tls.ca_file" in str(raised.value)
    assert "self-signed certificate" in str(raised.value)  # OpenSSL's reason, as it gave it

    # Without the startup check (redis.cluster set), the first command says the same.
    quiet = wrong.model_copy(update={"redis": wrong.redis.model_copy(update={"cluster": False})})
    client = await connect(quiet, server.url)
    try:
        with pytest.raises(RedisUnavailable, match=r"over TLS.*redis\.tls\.ca_file"):
            await Producer(client, MQOptions(namespace=rs_namespace)).send("t", 1)
    finally:
        await client.aclose()


async def test_verify_none_accepts_a_certificate_no_trusted_ca_signed(
    server: TlsRedisServer, other_ca: TlsFiles, rs_namespace: str
) -> None:
    unchecked = settings(server.url, rs_namespace, ca_file=other_ca.ca_cert, verify="none")
    assert await ping(unchecked)


async def test_a_certificate_for_another_host_fails_unless_check_hostname_is_off(
    with_tls: None, tmp_path: Path, rs_namespace: str
) -> None:
    elsewhere = TlsFiles.create(tmp_path, server_names=("DNS:redis.invalid",))
    for server in started(TlsRedisServer(elsewhere)):
        checked = settings(server.url, rs_namespace, ca_file=elsewhere.ca_cert)
        with pytest.raises(ConfigurationError, match=r"address mismatch.*check_hostname=false"):
            await ping(checked)
        trusted = settings(
            server.url, rs_namespace, ca_file=elsewhere.ca_cert, check_hostname=False
        )
        assert await ping(trusted)


async def test_a_server_that_requires_a_client_certificate_gets_the_configured_one(
    mtls_server: TlsRedisServer, tls_files: TlsFiles, rs_namespace: str
) -> None:
    anonymous = settings(mtls_server.url, rs_namespace, ca_file=tls_files.ca_cert)
    with pytest.raises(ConfigurationError, match=r"TLS handshake failed.*redis\.tls\.cert_file"):
        await ping(anonymous)
    identified = settings(
        mtls_server.url,
        rs_namespace,
        ca_file=tls_files.ca_cert,
        cert_file=tls_files.client_cert,
        key_file=tls_files.client_key,
    )
    assert await ping(identified)


async def test_tls_settings_without_a_rediss_url_are_refused(
    rs_server_url: str, tls_files: TlsFiles, rs_namespace: str
) -> None:
    plain = settings(rs_server_url, rs_namespace, ca_file=tls_files.ca_cert)
    with pytest.raises(ConfigurationError, match=r"redis\.tls is set but redis\.url .* rediss://"):
        await connect(plain, rs_server_url)


async def test_default_tls_settings_given_explicitly_are_not_tls(
    rs_server_url: str, rs_namespace: str
) -> None:
    copied = Settings.model_validate(fast_settings(rs_server_url, rs_namespace).model_dump())
    assert "tls" in copied.redis.model_fields_set  # every field given, at its default
    client = await connect(copied, rs_server_url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


def test_tls_files_must_exist_and_a_key_needs_its_certificate(
    tls_files: TlsFiles, rs_namespace: str
) -> None:
    with pytest.raises(ValueError, match=r"redis\.tls\.ca_file '/no/such\.pem' is not a readable"):
        settings("rediss://h:1", rs_namespace, ca_file="/no/such.pem")
    with pytest.raises(ValueError, match=r"key_file is set without redis\.tls\.cert_file"):
        settings("rediss://h:1", rs_namespace, key_file=tls_files.client_key)


@pytest.fixture(scope="module")
def tls_cluster(with_tls: None, tls_files: TlsFiles) -> Iterator[RedisCluster]:
    cluster = RedisCluster(tls=tls_files).start()
    try:
        yield cluster
    finally:
        cluster.close()


async def test_a_cluster_over_tls_verifies_every_node(
    tls_cluster: RedisCluster, tls_files: TlsFiles, other_ca: TlsFiles, rs_namespace: str
) -> None:
    assert tls_cluster.url.startswith("rediss+cluster://")
    ticks_app.handled.clear()
    app = RedisStreamingApplication(listener_packages=["tests.ha.ticks_app"])
    values = {"redis": {"tls": {"ca_file": str(tls_files.ca_cert)}}}
    async with app_test(app, url=tls_cluster.url, settings=values) as t:
        assert is_cluster(t.redis)
        for n in range(12):  # over the partitions, so over every node
            await t.send("ticks", n, key=f"k{n}")
        await wait_until(lambda: set(range(12)) <= ticks_app.handled.keys(), 15, "12 handled")

    wrong = settings(tls_cluster.url, rs_namespace, ca_file=other_ca.ca_cert)
    with pytest.raises(ConfigurationError, match=r"failed verification.*redis\.tls\.ca_file"):
        await ping(wrong)
