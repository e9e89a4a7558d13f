"""redis_streaming_starter.testing: an application under test is isolated from the shell and the
working directory, gets a namespace that is deleted afterwards, and ``handled``, ``until``,
``published``, ``dead_letters`` and overrides do what docs/testing.md says."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import redis
from dependency_injector import containers, providers
from fastapi import FastAPI

import redis_streaming_starter.testing as testing
from redis_streaming import ConfigurationError, ProducerRecord
from redis_streaming_starter import Container, RedisStreamingApplication, load_settings, resolve
from redis_streaming_starter.testing import AppTestFactory, app_test
from tests.starter.apps.tested import Greeter, GreeterContainer, GreeterSettings, Ticker, create_app
from tests.starter.apps.tested import listeners as tested
from tests.starter.apps.tested.listeners import greet, heard


async def keys_of(client: Any, namespace: str) -> list[bytes]:
    return [k async for k in client.scan_iter(match=f"{namespace}:*")]


def test_the_module_exports_are_pinned() -> None:
    assert testing.__all__ == ["FAST_MQ", "AppTest", "AppTestFactory", "Publication", "app_test"]
    for name in testing.__all__:
        assert getattr(testing, name).__doc__, name


async def test_settings_ignore_the_environment_and_application_yaml(
    rs_app: AppTestFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REDIS_STREAMING_MQ__BLOCK_MS", "abc")  # m7: this broke the tests
    monkeypatch.setenv("REDIS_STREAMING_TESTED__GREETING", "from the shell")
    (tmp_path / "application.yaml").write_text("app:\n  name: from-yaml\nmq:\n  batch_size: x\n")
    monkeypatch.chdir(tmp_path)
    async with rs_app(create_app, settings={"mq": {"batch_size": 7}}) as t:
        assert isinstance(t.settings, GreeterSettings)  # the factory's annotation
        assert t.settings.tested.greeting == "hello"
        assert (t.settings.app.name, t.settings.mq.batch_size) == ("redis-streaming-app", 7)
        assert (t.settings.mq.block_ms, t.settings.mq.rebalance_interval_s) == (300, 0.5)
        assert t.settings.redis.url == t.url
        assert t.settings.mq.namespace == t.namespace


async def test_isolated_false_reads_them_under_the_tests_values(
    rs_app: AppTestFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [n for n in os.environ if n.startswith("REDIS_STREAMING_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REDIS_STREAMING_TESTED__GREETING", "hi")
    monkeypatch.setenv("REDIS_STREAMING_MQ__NAMESPACE", "not-this-one")
    (tmp_path / "application.yaml").write_text("app:\n  name: from-yaml\n")
    monkeypatch.chdir(tmp_path)
    async with rs_app(create_app, isolated=False) as t:
        assert (t.settings.tested.greeting, t.settings.app.name) == ("hi", "from-yaml")
        assert t.settings.mq.namespace == t.namespace != "not-this-one"


async def test_an_application_is_rebuilt_from_its_classes_and_runners(
    rs_app: AppTestFactory,
) -> None:
    original = create_app(load_settings(settings_cls=GreeterSettings, isolated=True))

    @original.runner
    async def hello(container: Any) -> None:
        producer = await resolve(container.producer)
        await producer.send("names", "runner")

    async with rs_app(original, settings={"tested": {"greeting": "hey"}}) as t:
        assert t.app is not original
        assert isinstance(t.settings, GreeterSettings)
        assert t.container.declarative_parent is GreeterContainer
        await t.handled(greet)
        assert t.published("greetings") == ["hey, runner"]
    async with rs_app(original, runners=False) as t:
        assert t.app._runners == []


async def test_the_namespace_is_deleted_afterwards_unless_it_was_given(
    rs_app: AppTestFactory, rs_redis: Any, rs_namespace: str
) -> None:
    async with rs_app(create_app) as t:
        await t.send("names", "ada")
        await t.handled(greet)
        await t.redis.set(f"{t.namespace}:mine", 1)  # the application's own keys too
        assert len(await keys_of(rs_redis, t.namespace)) > 10
    assert await keys_of(rs_redis, t.namespace) == []
    async with rs_app(create_app, namespace=rs_namespace) as t:
        await t.send("names", "bob")
        await t.handled(greet)
    assert await keys_of(rs_redis, rs_namespace) != []  # yours: left as it was


async def test_handled_counts_each_message_once_and_only_its_outcome(
    rs_app: AppTestFactory,
) -> None:
    async with rs_app(create_app) as t:
        for name in ("a", "b", "c"):
            await t.send("names", name)
        sub = t.app.consumer.subscription("names", "greeting")
        await t.until(lambda: sub.processed == 3)
        await t.handled(greet, 2)  # all three were handled already: two of them
        await t.handled("greet")  # the third
        message = r"listener 'greet' \(names/greeting\) processed 0 of 1 message\(s\) in 0.3 s"
        with pytest.raises(AssertionError, match=message):
            await t.handled(greet, timeout=0.3)
        await t.send("names", "fail")  # attempt 1 fails, is retried, attempt 2 fails
        await t.handled(greet, outcome="dead_lettered")
        assert (sub.retried, sub.dead_lettered) == (1, 1)
        with pytest.raises(AssertionError, match="last error: ValueError: cannot greet fail"):
            await t.handled(greet, timeout=0.3)  # a dead letter is not processed
        await t.send("names", "reject")
        await t.handled(greet, outcome="dead_lettered")
        await t.send("names", "d")
        await t.handled(greet)
        letters = await t.dead_letters("names")
        assert [(d.reason, d.decoded()) for d in letters] == [
            ("max_attempts", "fail"),
            ("rejected", "reject"),
        ]
        assert await t.dead_letters("names", group="late") == []


async def test_handled_names_listeners_by_id_or_function(rs_app: AppTestFactory) -> None:
    async with rs_app(create_app) as t:
        await t.send("ticks", 7)
        await t.handled(Ticker.tick)  # a method of a provided class
        assert t.container.ticker().ticks == [7]
        await t.send("names", "ada")
        await t.handled("audit-names")
        await t.send("ticks", 8)
        await t.handled(t.container.ticker().tick)  # or the bound method
        assert t.container.ticker().ticks == [7, 8]
        with pytest.raises(ConfigurationError, match=r"several listeners .*pass the id of one"):
            await t.handled(tested.audit)
        with pytest.raises(
            ConfigurationError, match=r"no listener 'nobody'; its listeners: .*greet"
        ):
            await t.handled("nobody")
        with pytest.raises(ConfigurationError, match="is not a @listener function"):
            await t.handled(print)
        with pytest.raises(ConfigurationError, match="n counts messages"):
            await t.handled(greet, 0)
        with pytest.raises(ConfigurationError, match="'processed' or 'dead_lettered'"):
            await t.handled(greet, outcome="retried")  # type: ignore[arg-type]


async def test_a_latest_listener_misses_nothing_sent_after_the_entry(
    rs_app: AppTestFactory,
) -> None:
    tested.late.clear()
    async with rs_app(create_app) as t:
        await t.send("names", "first")
        await t.handled("latecomer")
        assert tested.late == ["first"]


async def test_publications_are_recorded_and_sent(rs_app: AppTestFactory) -> None:
    async with rs_app(create_app) as t:
        await t.send("names", "ada")
        await t.handled(greet)
        await t.handled(heard)  # what greet published reached Redis and its listener
        assert t.published("greetings") == ["hello, ada"]
        [publication] = t.publications("greetings")
        assert (publication.key, publication.headers) == ("ada", {"by": "greet"})
        assert publication.result.message_id is not None
        assert t.published("names") == []  # t.send is the test's, not the application's
        await t.send("counts", 3)
        await t.handled(tested.fan_out)
        assert t.published("items") == [0, 1, 2]
        assert [p.key for p in t.publications("items")] == ["k0", "k1", "k2"]
        assert [p.topic for p in t.publications()] == ["greetings", "items", "items", "items"]
        producer = await resolve(t.container.producer)
        await producer.send_many("items", (n for n in (7, 8)))  # an iterator: sent and recorded
        assert t.published("items")[3:] == [7, 8]
        await producer.send_many("items", [ProducerRecord(9, headers={"h": "1"})])
        assert t.publications("items")[-1].headers == {"h": "1"}


class Loud(Greeter):
    def __init__(self) -> None:
        self.greeting = "HELLO"


async def test_overrides_before_and_after_the_start(rs_app: AppTestFactory) -> None:
    async with rs_app(create_app, overrides={GreeterContainer.greeter: Loud()}) as t:
        await t.send("names", "ada")
        await t.handled(greet)
        t.override("greeter", providers.Factory(Loud))  # a provider is used as it is
        t.override(Container.settings, t.settings)  # the base class's provider
        await t.send("names", "bob")
        await t.handled(greet)
        assert t.published("greetings") == ["HELLO, ada", "HELLO, bob"]
        other = containers.DynamicContainer()
        other.thing = providers.Object(1)
        with pytest.raises(ConfigurationError, match="is not a provider of GreeterContainer"):
            t.override(other.thing, 2)
        with pytest.raises(ConfigurationError, match="not a provider"):
            t.override("nothing_here", 2)


async def test_until_returns_the_value_or_says_what_stayed_false(rs_app: AppTestFactory) -> None:
    async with rs_app(create_app) as t:
        assert await t.until(lambda: [1]) == [1]

        async def redis_has_it() -> Any:
            return await t.redis.get(f"{t.namespace}:absent")

        with pytest.raises(
            AssertionError, match=r"redis_has_it still false after 0\.1 s; last value"
        ):
            await t.until(redis_has_it, 0.1)

        def check() -> bool:
            assert 1 + 1 == 3, "arithmetic"
            return True

        with pytest.raises(AssertionError, match=r"the sum still false .* failed: arithmetic"):
            await t.until(check, 0.1, what="the sum")


def test_bad_arguments_say_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match=r"pass app_test\(..., url=...\)"):
        app_test(create_app, settings={"redis": {"url": "redis://x"}})
    with pytest.raises(ConfigurationError, match=r"pass app_test\(..., namespace=...\)"):
        app_test(create_app, settings={"mq": {"namespace": "x"}})
    with pytest.raises(ConfigurationError, match="sections as a dict"):
        app_test(create_app, settings=load_settings(isolated=True))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="RedisStreamingApplication or a factory"):
        app_test(42)


async def test_a_factory_must_use_the_settings_it_is_given(rs_app: AppTestFactory) -> None:
    def ignores(settings: GreeterSettings) -> RedisStreamingApplication:
        return create_app(load_settings(settings_cls=GreeterSettings, isolated=True))

    with pytest.raises(ConfigurationError, match="with the settings it was given"):
        async with rs_app(ignores):
            pass
    with pytest.raises(ConfigurationError, match="the factory returned 42"):
        async with rs_app(lambda settings: 42):
            pass


async def test_a_fastapi_factory_runs_its_lifespan_and_serves_its_routes(
    rs_app: AppTestFactory,
) -> None:
    def web(settings: GreeterSettings) -> FastAPI:
        app = create_app(settings)
        api = FastAPI(lifespan=app.lifespan)
        api.state.streaming = app
        api.include_router(app.router)
        api.add_api_route("/hello", lambda: {"hello": "world"})
        return api

    async with rs_app(web) as t:
        assert t.app.running
        assert (await t.http.get("/hello")).json() == {"hello": "world"}
        assert (await t.http.get("/actuator/health")).json()["status"] == "UP"
    assert not t.app.running


async def test_without_a_url_a_private_server_is_started_and_stopped() -> None:
    async with app_test(create_app) as t:
        await t.send("names", "ada")
        await t.handled(greet)
        url = t.url
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()


@pytest.mark.cluster
async def test_on_a_cluster_too(rs_app: AppTestFactory, rs_redis: Any) -> None:
    async with rs_app(create_app) as t:
        await t.send("names", "ada", key="ada")
        await t.handled(greet)
        await t.handled(heard)
        assert t.published("greetings") == ["hello, ada"]
    assert await keys_of(rs_redis, t.namespace) == []


async def test_a_failing_start_raises_its_own_error_and_leaves_no_keys(
    rs_app: AppTestFactory, rs_redis: Any
) -> None:
    def broken(settings: GreeterSettings) -> RedisStreamingApplication:
        packages = ["tests.starter.apps.tested.listeners", "tests.starter.apps.broken_import"]
        return RedisStreamingApplication(settings=settings, listener_packages=packages)

    t = rs_app(broken)
    with pytest.raises(ConfigurationError, match="broken_import"):
        async with t:
            pass
    assert await keys_of(rs_redis, t.namespace) == []


async def test_a_rebuilt_application_keeps_its_hooks_and_info_contributors(
    rs_app: AppTestFactory,
) -> None:
    calls: list[str] = []
    source = RedisStreamingApplication(
        settings=load_settings(isolated=True), container=GreeterContainer
    )
    source.on_startup(lambda container: calls.append("up"))
    source.on_shutdown(lambda container: calls.append("down"))
    source.info_contributor("build")(lambda container: {"commit": "abc"})
    async with rs_app(source, settings={"actuator": {"expose": ["info"]}}) as t:
        assert calls == ["up"]
        info = (await t.http.get("/actuator/info")).json()
        assert info["build"] == {"commit": "abc"}
    assert calls == ["up", "down"]
