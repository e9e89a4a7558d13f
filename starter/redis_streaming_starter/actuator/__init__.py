"""Actuator endpoints on FastAPI, Spring Boot Actuator style."""

from redis_streaming_starter.actuator.router import build_router

__all__ = ["build_router"]
