"""``/listeners``: the application's listeners, their partitions and counters; pause and resume.

Pausing keeps the listener's partitions (their leases are renewed, no other member takes them)
and stops taking new messages once the handler in progress is done, as Spring Kafka's
``pause()`` does; the group's lag grows until it is resumed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from redis_streaming import Consumer, Subscription
from redis_streaming_starter.actuator.context import ActuatorContext

__all__ = ["ListenerInfo", "Listeners", "ListenerStateChange", "routes"]

_STATES = {"paused": "paused", "pause": "paused", "running": "running", "resumed": "running",
           "resume": "running"}  # fmt: skip
# The accepted words in any case, for the OpenAPI schema (JSON Schema has no (?i) flag).
_PATTERN = "^(?:" + "|".join("".join(f"[{c.upper()}{c}]" for c in w) for w in _STATES) + ")$"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ListenerInfo(_Model):
    """One listener: where it reads, its state and what it has done since start."""

    id: str = Field(description="The listener id (@listener(id=...), default its qualname).")
    topic: str
    group: str
    state: str = Field(description="created, running, paused or stopped.")
    owned_partitions: list[int] = Field(description="Partitions whose lease it holds.")
    in_flight: int = Field(description="Handlers running now.")
    processed: int = Field(description="Messages handled successfully.")
    failed: int = Field(description="Handler calls that raised.")
    retried: int = Field(description="Retries scheduled or performed.")
    dead_lettered: int = Field(description="Messages sent to the dead-letter stream.")
    filtered: int = Field(description="Messages its filter skipped (acknowledged, not handled).")
    batch: bool = Field(description="Whether it takes batches (lists of messages).")
    last_error: str | None = Field(description="The latest error, 'Type: message'.")
    last_error_at: float | None = Field(description="When it happened, epoch seconds.")
    consumer_id: str = Field(description="This process's consumer name in the group.")


class Listeners(_Model):
    """Every listener of the application, by id."""

    listeners: dict[str, ListenerInfo]


class ListenerStateChange(BaseModel):
    """The state to put a listener in: ``paused`` or ``running``, in any case; Spring Cloud
    Stream's ``PAUSED`` and ``RESUMED`` work too (``resume``/``resumed`` mean ``running``,
    ``pause`` means ``paused``)."""

    model_config = ConfigDict(strict=True)

    state: str = Field(json_schema_extra={"pattern": _PATTERN}, examples=["paused", "running"])

    @field_validator("state")
    @classmethod
    def _normalise(cls, value: str) -> str:
        if value.lower() not in _STATES:
            raise ValueError("state must be 'paused' or 'running' (or 'resumed'), in any case")
        return _STATES[value.lower()]


def _info(sub: Subscription, consumer_id: str) -> ListenerInfo:
    return ListenerInfo(
        id=sub.id, topic=sub.topic, group=sub.group, state=sub.state.value,
        owned_partitions=sub.owned_partitions, in_flight=sub.in_flight, processed=sub.processed,
        failed=sub.failed, retried=sub.retried, dead_lettered=sub.dead_lettered,
        filtered=sub.filtered, batch=sub.batch,
        last_error=sub.last_error, last_error_at=sub.last_error_at, consumer_id=consumer_id,
    )  # fmt: skip


def routes(ctx: ActuatorContext) -> APIRouter:
    """``GET /listeners``, ``GET /listeners/{id}`` and ``POST /listeners/{id}`` (token), when
    the ``listeners`` endpoint is exposed; otherwise an empty router."""
    router = ctx.router(tags=["actuator"])
    if not ctx.is_exposed("listeners"):
        return router
    problems: dict[int | str, dict[str, Any]] = {
        503: {"description": "The application is not running."}
    }

    def consumer() -> Consumer:
        app = ctx.app
        if not app.running or app.consumer is None or not app.consumer.running:
            raise HTTPException(
                503,
                "the application is not running (starting or stopping), so its listeners have "
                "no state to show or change; retry once GET /health/readiness is UP",
            )
        return app.consumer

    def find(listener_id: str) -> tuple[Consumer, Subscription]:
        c = consumer()
        subs = {s.id: s for s in c.subscriptions}
        if listener_id not in subs:
            known = ", ".join(repr(i) for i in sorted(subs)) or "none"
            raise HTTPException(
                404, f"no listener {listener_id!r}; known listener ids: {known} (GET /listeners)"
            )
        return c, subs[listener_id]

    @router.get(
        "/listeners",
        summary="Every listener: state, owned partitions, counters",
        response_model=Listeners,
        responses=problems,
    )
    async def listeners() -> Listeners:
        c = consumer()
        return Listeners(listeners={s.id: _info(s, c.consumer_id) for s in c.subscriptions})

    @router.get(
        "/listeners/{listener_id:path}",
        summary="One listener",
        response_model=ListenerInfo,
        responses={**problems, 404: {"description": "No listener has this id."}},
    )
    async def listener(listener_id: str) -> ListenerInfo:
        c, sub = find(listener_id)
        return _info(sub, c.consumer_id)

    @router.post(
        "/listeners/{listener_id:path}",
        summary="Pause or resume a listener",
        description="Paused listeners keep their partitions and take no new messages; "
        "resumed ones continue where they stopped. Needs the actuator token.",
        response_model=ListenerInfo,
        responses={
            **problems,
            400: {"description": "The body is not JSON."},
            401: {"description": "Missing or wrong bearer token."},
            403: {"description": "No actuator token is configured."},
            404: {"description": "No listener has this id."},
        },
    )
    async def change(listener_id: str, body: ListenerStateChange) -> ListenerInfo:
        c, sub = find(listener_id)
        if body.state == "paused":
            c.pause(sub.topic, sub.group)
        else:
            c.resume(sub.topic, sub.group)
        return _info(sub, c.consumer_id)

    return router
