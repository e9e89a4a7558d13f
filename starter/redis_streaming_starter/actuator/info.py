"""Actuator endpoint ``/info``: the application, its active profiles, the framework, Python,
the Redis server, and a section per info contributor (``@app.info_contributor(name)``)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import platform
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

import redis_streaming
from redis_streaming import ConfigurationError
from redis_streaming_starter.actuator.context import ActuatorContext
from redis_streaming_starter.actuator.health import server_info
from redis_streaming_starter.lifecycle import check_takes_container

__all__ = ["Info", "InfoContributors", "routes"]

log = logging.getLogger("redis_streaming_starter")

C = TypeVar("C", bound=Callable[[Any], Any])

BUILT_IN = ("app", "profiles", "framework", "python", "redis")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")


class AppInfo(BaseModel):
    name: str = Field(description="app.name")
    version: str = Field(description="app.version")
    instanceId: str | None = Field(
        description="Consumer id of this instance (app.instance_id, or generated at start); "
        "null before the first start when app.instance_id is unset."
    )


class FrameworkInfo(BaseModel):
    name: str = Field(description="Always redis-streaming.")
    version: str


class PythonInfo(BaseModel):
    version: str = Field(description="e.g. 3.11.7")
    implementation: str = Field(description="e.g. CPython")


class RedisInfo(BaseModel):
    version: str | None = Field(description="Server version (Valkey's own when it is Valkey).")
    mode: str | None = Field(description="standalone, cluster or sentinel.")


class RedisUnavailable(BaseModel):
    error: str = Field(description="Why the server could not be asked (the endpoint stays 200).")


class Info(BaseModel):
    """``GET /info``: the sections below, then one per info contributor, each the
    contributor's dict or ``{"error": "..."}``."""

    model_config = ConfigDict(extra="allow")

    app: AppInfo
    profiles: list[str] = Field(
        description="Active profiles (REDIS_STREAMING_PROFILES), in order; empty when none."
    )
    framework: FrameworkInfo
    python: PythonInfo
    redis: RedisInfo | RedisUnavailable


def routes(ctx: ActuatorContext) -> APIRouter:
    """``/info`` when ``info`` is exposed."""
    router = ctx.router()
    if not ctx.is_exposed("info"):
        return router
    app = ctx.app

    @router.get("/info", summary="Application, profiles, versions and contributed sections")
    async def info() -> Info:
        contributors = app.info_contributors
        consumer = app.consumer
        instance_id = consumer.consumer_id if consumer is not None else None
        timeout_s = app.health.timeout_s
        contributed = await asyncio.gather(
            *(_contribution(n, fn, app.container, timeout_s) for n, fn in contributors.items())
        )
        return Info(
            app=AppInfo(
                name=app.settings.app.name,
                version=app.settings.app.version,
                instanceId=instance_id or app.settings.app.instance_id,
            ),
            profiles=list(app.settings.active_profiles),
            framework=FrameworkInfo(name="redis-streaming", version=redis_streaming.__version__),
            python=PythonInfo(
                version=platform.python_version(),
                implementation=platform.python_implementation(),
            ),
            redis=await _redis(app.redis, timeout_s),
            **dict(zip(contributors, contributed, strict=True)),
        )

    return router


async def _redis(client: Any, timeout_s: float) -> RedisInfo | RedisUnavailable:
    if client is None:
        return RedisUnavailable(error="not connected: the application is not running")
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            reply = await client.info("server")
    except Exception as exc:
        if deadline.expired():
            return RedisUnavailable(error=f"no answer within {timeout_s}s")
        return RedisUnavailable(error=f"{type(exc).__name__}: {exc}")
    return RedisInfo.model_validate(server_info(reply))


class InfoContributors:
    """The application's info contributors, by section name in registration order."""

    def __init__(self) -> None:
        self.by_name: dict[str, Callable[[Any], Any]] = {}

    def register(self, name: str) -> Callable[[C], C]:
        """A decorator registering ``fn(container)`` as section ``name``; a name that is
        malformed or taken, or a function that cannot take the container, raises
        ``ConfigurationError``."""

        def register(fn: C) -> C:
            check_takes_container(fn, f"@app.info_contributor({name!r})")
            _check_section_name(name, self.by_name)
            self.by_name[name] = fn
            return fn

        return register


def _check_section_name(name: str, taken: Mapping[str, object]) -> None:
    """Raise ``ConfigurationError`` unless ``name`` can be a new section of ``/info``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"@app.info_contributor({name!r}): a section name is a letter, then letters, digits, "
            "'_' or '-', e.g. @app.info_contributor('build')"
        )
    if name in BUILT_IN or name in taken:
        raise ConfigurationError(
            f"@app.info_contributor({name!r}): /actuator/info already has a section {name!r} "
            f"({'built in' if name in BUILT_IN else 'another contributor'}); choose another name"
        )


async def _contribution(
    name: str, fn: Callable[[Any], Any], container: Any, timeout_s: float
) -> dict[str, Any]:
    """The contributor's section, JSON-ready; ``{"error": ...}`` when it fails."""
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            result = fn(container)
            if inspect.isawaitable(result):
                result = await result
        if not isinstance(result, Mapping):
            raise TypeError(f"returned {type(result).__name__}, not a dict")
        section: dict[str, Any] = to_jsonable_python(dict(result))
        return section
    except Exception as exc:
        why = (
            f"no answer within {timeout_s}s"
            if deadline.expired()
            else f"{type(exc).__name__}: {exc}"
        )
        log.warning("info contributor %r failed: %s", name, why, exc_info=not deadline.expired())
        return {"error": why}
