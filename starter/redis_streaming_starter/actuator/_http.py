"""What the ``topics`` and ``dlq`` endpoints share: the ``Admin`` of a connected application,
library errors as HTTP answers, the topic path parameter and the error responses.

Errors are ``{"detail": "..."}`` saying what to do: 400 for bad input (names, ids; the
library's message), 404 for an unknown topic or dead letter, 409 when what is in Redis prevents
the change, 503 when Redis cannot be reached or the application has no connection. Never a 500
for bad input.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import HTTPException, Path
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from redis_streaming import Admin, RedisStreamingError, RedisUnavailable, TopicNotFound
from redis_streaming.integration import NAME_PATTERN, is_connection_error
from redis_streaming_starter.actuator.context import ActuatorContext
from redis_streaming_starter.container import resolve

__all__ = [
    "GUARDED_RESPONSES",
    "NAME_SCHEMA",
    "RESPONSES",
    "CamelModel",
    "Problem",
    "Topic",
    "admin_of",
    "guard",
    "missing_topic",
]

# Documented in the OpenAPI schema, checked by the library (400 with its message, not a 422).
NAME_SCHEMA: JsonDict = {"pattern": f"^{NAME_PATTERN}$"}
Topic = Annotated[str, Path(description="Topic name.", json_schema_extra=NAME_SCHEMA)]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Problem(BaseModel):
    detail: str


RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Invalid topic or group name, or id."},
    404: {"model": Problem, "description": "Unknown topic (or dead letter)."},
    503: {"model": Problem, "description": "Redis is unreachable."},
}
GUARDED_RESPONSES: dict[int | str, dict[str, Any]] = {
    **RESPONSES,
    401: {"model": Problem, "description": "Missing or wrong bearer token."},
    403: {"model": Problem, "description": "No actuator token is configured."},
}


def missing_topic(topic: str) -> str:
    return f"topic {topic!r} does not exist; GET /topics lists the topics, POST /topics creates one"


@contextmanager
def guard() -> Iterator[None]:
    """Library errors as HTTP answers: never a 500 for bad input or a lost connection."""
    try:
        yield
    except HTTPException:
        raise
    except TopicNotFound as exc:
        raise HTTPException(404, missing_topic(exc.topic)) from exc
    except RedisUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    except ValueError as exc:  # InvalidName, ConfigurationError, DecodeError
        raise HTTPException(400, str(exc)) from exc
    except RedisStreamingError as exc:  # what is in Redis prevents it, e.g. a replay's target
        raise HTTPException(409, str(exc)) from exc  # key of the wrong type: the text says why
    except Exception as exc:
        if is_connection_error(exc) or isinstance(exc, TimeoutError):
            raise HTTPException(
                503, f"Redis did not answer ({type(exc).__name__}: {exc}); try again later"
            ) from exc
        raise


async def admin_of(ctx: ActuatorContext) -> Admin:
    """The container's ``Admin``, once the application is connected (503 before: resolving the
    providers earlier would connect, or start an embedded server)."""
    if ctx.app.redis is None:
        raise HTTPException(
            503, "the application is not connected to Redis (not started, or stopped); "
            "retry once GET /health/readiness is UP",
        )  # fmt: skip
    found: Admin = await resolve(ctx.app.container.admin)
    return found
