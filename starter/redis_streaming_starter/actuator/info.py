"""Actuator endpoint ``/info``: the application, the framework, Python and the Redis server."""

from __future__ import annotations

import asyncio
import platform
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

import redis_streaming
from redis_streaming_starter.actuator.context import ActuatorContext
from redis_streaming_starter.actuator.health import server_info

__all__ = ["Info", "routes"]


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
    """``GET /info``."""

    app: AppInfo
    framework: FrameworkInfo
    python: PythonInfo
    redis: RedisInfo | RedisUnavailable


def routes(ctx: ActuatorContext) -> APIRouter:
    """``/info`` when ``info`` is exposed."""
    router = ctx.router()
    if not ctx.is_exposed("info"):
        return router
    app = ctx.app

    @router.get("/info", summary="Application, framework, Python and Redis versions")
    async def info() -> Info:
        consumer = app.consumer
        instance_id = consumer.consumer_id if consumer is not None else None
        return Info(
            app=AppInfo(
                name=app.settings.app.name,
                version=app.settings.app.version,
                instanceId=instance_id or app.settings.app.instance_id,
            ),
            framework=FrameworkInfo(name="redis-streaming", version=redis_streaming.__version__),
            python=PythonInfo(
                version=platform.python_version(),
                implementation=platform.python_implementation(),
            ),
            redis=await _redis(app.redis, app.health.timeout_s),
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
