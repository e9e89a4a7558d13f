"""The shop: a FastAPI application with its own routes that mounts the starter.

``python -m examples.fastapi_integration``, or ``uvicorn examples.fastapi_integration.main:api``.
"""

from __future__ import annotations

from fastapi import FastAPI

from examples.fastapi_integration.orders import ShopContainer
from examples.fastapi_integration.routes import router as orders_router
from redis_streaming_starter import RedisStreamingApplication, Settings, load_settings


def create_api(settings: Settings | None = None) -> FastAPI:
    """The shop's FastAPI app. The starter's lifespan connects to Redis and runs the listeners
    (stopping them gracefully on shutdown); its router serves ``/actuator``. ``settings``
    default to the environment's, named ``shop``; tests pass their own."""
    streaming = RedisStreamingApplication(
        settings=settings
        if settings is not None
        else load_settings(defaults={"app": {"name": "shop"}}),
        container=ShopContainer,
        listener_packages=["examples.fastapi_integration.listeners"],
    )
    api = FastAPI(title="shop", lifespan=streaming.lifespan)
    api.state.streaming = streaming
    api.state.container = streaming.container
    api.include_router(orders_router)
    api.include_router(streaming.router)
    return api


api = create_api()
