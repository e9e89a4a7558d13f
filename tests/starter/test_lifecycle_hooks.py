"""``@app.on_startup`` / ``@app.on_shutdown`` against a real server: the startup hooks run in
order after Redis is connected and before any listener consumes, the shutdown hooks in reverse
order after the listeners drained and before Redis closes; a failing startup hook stops the
start (in this process, through the lifespan, and ``redis-streaming run`` with one line and
exit code 2) before anything is consumed; a failing shutdown hook does not stop the others."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from redis_streaming import ConfigurationError, MQOptions, Producer
from redis_streaming.testing import free_port
from redis_streaming_starter import RedisStreamingApplication, Settings, StartupError
from tests.helpers import serving, wait_until
from tests.starter.apps import hooked
from tests.starter.support import app_env, start_app, stop_app

APP = "tests.starter.apps.hooked"
TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def _clear() -> None:
    hooked.events.clear()


async def _groups(redis: Any, namespace: str) -> list[Any]:
    """The consumer groups on the namespace's streams: none before a listener started."""
    streams = [k async for k in redis.scan_iter(match=f"{namespace}:*", _type="stream")]
    assert streams, "the job was written"
    return [group for stream in streams for group in await redis.xinfo_groups(stream)]


async def test_hooks_run_in_order_around_the_listeners(
    settings: Settings, rs_redis: aioredis.Redis
) -> None:
    producer = Producer(rs_redis, settings.mq)
    await producer.send("jobs", {"id": "early"})  # waiting before the application starts
    app = RedisStreamingApplication(settings=settings, listener_packages=[APP])
    events = hooked.events

    @app.on_startup
    def first(container: Any) -> None:  # a plain function
        assert container is app.container
        events.append(f"startup first, consumer built: {app.consumer is not None}")

    @app.on_startup
    async def second(container: Any) -> None:
        events.append(f"startup second, Redis answers: {await app.redis.ping()}")

    @app.on_shutdown
    async def closes_last(container: Any) -> None:  # registered first: runs last
        events.append(f"shutdown last, Redis answers: {await app.redis.ping()}")

    @app.on_shutdown
    def closes_first(container: Any) -> None:
        events.append(f"shutdown first, consumer running: {app.consumer.running}")  # type: ignore[union-attr]

    await app.start()
    try:
        await wait_until(lambda: "handled early" in events, 10, "the waiting job handled")
        await producer.send("jobs", {"id": "slow", "seconds": 0.5})
        await wait_until(lambda: "handling slow" in events, 10, "the slow job in flight")
    finally:
        await app.stop()  # drains the slow job, then the shutdown hooks
    assert events == [
        "startup first, consumer built: False",
        "startup second, Redis answers: True",
        "handling early",
        "handled early",
        "handling slow",
        "handled slow",
        "shutdown first, consumer running: False",
        "shutdown last, Redis answers: True",
    ]
    assert app.redis is None  # closed after the hooks
    await app.stop()
    assert len(events) == 8  # once per start


async def test_a_failing_startup_hook_stops_the_start_before_any_listener_consumes(
    settings: Settings, rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    await Producer(rs_redis, settings.mq).send("jobs", {"id": "early"})
    app = RedisStreamingApplication(settings=settings, listener_packages=[APP])
    ran: list[str] = []

    @app.on_startup
    async def opens(container: Any) -> None:
        ran.append("opens")

    @app.on_startup
    async def warm(container: Any) -> None:
        raise RuntimeError("cache\n  unreachable")

    @app.on_startup
    def never(container: Any) -> None:
        ran.append("never")

    @app.on_shutdown
    def closes(container: Any) -> None:
        ran.append("closes")

    def check(caught: pytest.ExceptionInfo[StartupError]) -> None:
        name = f"{__name__}.{warm.__qualname__}"
        assert str(caught.value) == f"startup hook {name} failed: RuntimeError: cache unreachable"
        assert caught.value.hook == name
        assert isinstance(caught.value.__cause__, RuntimeError)
        assert ran == ["opens"]  # no later hook, no shutdown hook
        ran.clear()
        assert not app.running
        assert app.redis is None  # what had started is stopped

    with pytest.raises(StartupError) as caught:
        await app.start()
    check(caught)

    async def serve() -> None:
        async with serving(app.asgi, started=True):  # the lifespan, as under uvicorn
            pass

    with pytest.raises(StartupError) as caught:
        await serve()
    check(caught)
    assert hooked.events == []
    assert await _groups(rs_redis, rs_namespace) == []  # no listener ever read


async def test_a_failing_shutdown_hook_is_logged_and_the_others_run(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = RedisStreamingApplication(settings=settings)
    ran: list[str] = []

    @app.on_shutdown
    def last(container: Any) -> None:
        ran.append("last")

    @app.on_shutdown
    async def broken(container: Any) -> None:
        raise RuntimeError("flush failed")

    @app.on_shutdown
    async def first(container: Any) -> None:
        ran.append("first")

    await app.start()
    with caplog.at_level(logging.ERROR, logger="redis_streaming_starter"):
        await app.stop()
    assert ran == ["first", "last"]
    assert app.redis is None
    assert not app.running
    [record] = [r for r in caplog.records if "shutdown hook" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert f"{__name__}.{broken.__qualname__} failed" in record.getMessage()
    assert record.exc_info is not None
    assert "flush failed" in str(record.exc_info[1])


def test_a_hook_that_cannot_take_the_container_is_refused_where_it_is_registered(
    settings: Settings,
) -> None:
    app = RedisStreamingApplication(settings=settings)
    with pytest.raises(ConfigurationError, match=r"@app\.on_startup: .*warm\(\) must take one"):

        @app.on_startup
        async def warm() -> None:
            pass

    with pytest.raises(ConfigurationError, match=r"@app\.on_shutdown: .* def <lambda>\(container"):
        app.on_shutdown(lambda a, b: None)
    with pytest.raises(ConfigurationError, match="is not callable"):
        app.on_startup("warm")  # type: ignore[arg-type]
    app.on_startup(lambda *anything: None)  # takes the container among others: accepted
    app.on_shutdown(lambda container, *, flush=True: None)


# -- redis-streaming run --------------------------------------------------------------------------

PROJECT = """\
import os

from redis_streaming_starter import RedisStreamingApplication, listener


def note(line: str) -> None:
    with open("events.txt", "a") as f:
        f.write(line + "\\n")


@listener("jobs", group="hooked")
async def work(job: dict) -> None:
    note(f"handled {job['id']}")


app = RedisStreamingApplication(listener_packages=["main"])


@app.on_startup
def opens(container) -> None:
    note("startup opens")


@app.on_startup
async def warm(container) -> None:
    if os.environ.get("FAIL_WARM"):
        raise RuntimeError("cache unreachable at redis://:hunter2@cache:6379")
    note("startup warm")


@app.on_shutdown
async def flush(container) -> None:
    note("shutdown flush")


@app.on_shutdown
def close(container) -> None:
    note("shutdown close")
"""


def _events(project: Path) -> list[str]:
    path = project / "events.txt"
    return path.read_text().splitlines() if path.exists() else []


async def test_run_exits_2_with_one_line_when_a_startup_hook_fails(
    tmp_path: Path, rs_redis: aioredis.Redis, rs_server_url: str, rs_namespace: str
) -> None:
    (tmp_path / "main.py").write_text(PROJECT)
    await Producer(rs_redis, MQOptions(namespace=rs_namespace)).send("jobs", {"id": "early"})
    # INFO: what an operator sees by default, and still one line
    env = app_env(
        rs_server_url, rs_namespace, free_port(), LOGGING__LEVEL="INFO", MQ__BLOCK_MS="300"
    )
    cmd = [sys.executable, "-m", "redis_streaming_starter.cli", "run", "main:app"]
    run = subprocess.run(
        cmd, cwd=tmp_path, env={**env, "FAIL_WARM": "1"}, capture_output=True, text=True,
        timeout=TIMEOUT_S,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [
        "redis-streaming: startup hook main.warm failed: RuntimeError: cache unreachable at "
        "redis://:******@cache:6379"
    ]
    assert _events(tmp_path) == ["startup opens"]  # no listener ran, no shutdown hook either
    assert await _groups(rs_redis, rs_namespace) == []


async def test_run_runs_the_hooks_in_order_and_the_shutdown_hooks_after_sigterm(
    tmp_path: Path,
    rs_redis: aioredis.Redis,
    rs_server_url: str,
    rs_namespace: str,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    (tmp_path / "main.py").write_text(PROJECT)
    await Producer(rs_redis, MQOptions(namespace=rs_namespace)).send("jobs", {"id": "early"})
    env = app_env(rs_server_url, rs_namespace, free_port(), MQ__BLOCK_MS="300")
    proc = start_app("main:app", env, cwd=tmp_path, stderr=subprocess.PIPE)
    procs.append(proc)
    await wait_until(lambda: "handled early" in _events(tmp_path), 30, "the job handled")
    stderr = stop_app(proc)
    assert proc.returncode == 0, stderr.decode()
    assert _events(tmp_path) == [
        "startup opens",
        "startup warm",
        "handled early",
        "shutdown close",
        "shutdown flush",
    ]
