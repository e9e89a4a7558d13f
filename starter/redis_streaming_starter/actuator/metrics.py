"""Actuator endpoints /metrics, /metrics/{name} and /prometheus (being written)."""

from __future__ import annotations

from fastapi import APIRouter

from redis_streaming_starter.actuator.context import ActuatorContext

__all__ = ["routes"]


def routes(ctx: ActuatorContext) -> APIRouter:
    """The metrics endpoints that ``ctx`` exposes, relative to the base path."""
    return APIRouter()
