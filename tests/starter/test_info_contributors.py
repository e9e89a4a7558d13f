"""``@app.info_contributor(name)``: sections of ``/actuator/info`` from plain and async
functions, through httpx against the running application; a contributor that raises, times out
or returns no dict shows as an error entry, and the rest of the answer is unchanged."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from redis_streaming import ConfigurationError
from redis_streaming_starter import RedisStreamingApplication, Settings
from tests.helpers import serving


async def test_contributors_add_sections_and_a_failing_one_is_isolated(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = RedisStreamingApplication(settings=settings)
    app.health.timeout_s = 0.2  # the time limit of a contributor too

    @app.info_contributor("build")
    def build(container: Any) -> dict[str, Any]:
        return {"version": "1.4.2", "time": datetime(2026, 12, 1, tzinfo=UTC), "tags": {"a"}}

    @app.info_contributor("stock")
    async def stock(container: Any) -> dict[str, Any]:
        assert container is app.container
        return {"redisKeys": await app.redis.dbsize() >= 0}

    @app.info_contributor("broken")
    async def broken(container: Any) -> dict[str, Any]:
        raise RuntimeError("inventory database down")

    @app.info_contributor("listy")
    def listy(container: Any) -> Any:
        return [1, 2]

    @app.info_contributor("stuck")
    async def stuck(container: Any) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    async with serving(app.asgi) as http:
        with caplog.at_level(logging.WARNING, logger="redis_streaming_starter"):
            response = await http.get("/actuator/info")
    assert response.status_code == 200
    info = response.json()
    assert list(info) == [
        "app", "profiles", "framework", "python", "redis", "build", "stock", "broken", "listy",
        "stuck",
    ]  # fmt: skip
    assert info["app"]["name"] == "testapp"
    assert info["profiles"] == []
    assert info["redis"]["mode"] == "standalone"
    assert info["build"] == {"version": "1.4.2", "time": "2026-12-01T00:00:00Z", "tags": ["a"]}
    assert info["stock"] == {"redisKeys": True}
    assert info["broken"] == {"error": "RuntimeError: inventory database down"}
    assert info["listy"] == {"error": "TypeError: returned list, not a dict"}
    assert info["stuck"] == {"error": "no answer within 0.2s"}
    warned = sorted(r.getMessage() for r in caplog.records if "info contributor" in r.msg)
    assert warned == [
        "info contributor 'broken' failed: RuntimeError: inventory database down",
        "info contributor 'listy' failed: TypeError: returned list, not a dict",
        "info contributor 'stuck' failed: no answer within 0.2s",
    ]


async def test_a_contributor_registered_after_the_app_was_served_is_shown(
    settings: Settings,
) -> None:
    app = RedisStreamingApplication(settings=settings)
    async with serving(app.asgi, started=False) as http:
        app.info_contributor("late")(lambda container: {"here": True})
        info = (await http.get("/actuator/info")).json()
    assert info["late"] == {"here": True}


def test_taken_and_malformed_section_names_are_refused(settings: Settings) -> None:
    app = RedisStreamingApplication(settings=settings)
    app.info_contributor("build")(lambda container: {})
    for name, says in [
        ("app", "already has a section 'app' (built in)"),
        ("profiles", "already has a section 'profiles' (built in)"),
        ("build", "already has a section 'build' (another contributor)"),
        ("", "a section name is a letter"),
        ("git info", "a section name is a letter"),
    ]:
        with pytest.raises(ConfigurationError, match=f"info_contributor.*{re.escape(says)}"):
            app.info_contributor(name)(lambda container: {})
    with pytest.raises(ConfigurationError, match="must take one argument"):
        app.info_contributor("git")(lambda: {})
