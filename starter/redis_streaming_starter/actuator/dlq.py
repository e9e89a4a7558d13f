"""Actuator endpoints of dead letters: ``/topics/{topic}/dlq`` (browse with paging, one
entry, replay, purge); exposure id ``dlq``, every POST/DELETE needs the token."""

from __future__ import annotations

import base64
import codecs
import json
import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from redis_streaming import DeadLetterEntry, DeadLetters
from redis_streaming.integration import validate_entry_id, validate_name
from redis_streaming_starter.actuator._http import (
    GUARDED_RESPONSES,
    NAME_SCHEMA,
    RESPONSES,
    CamelModel,
    Problem,
    Topic,
    admin_of,
    guard,
    missing_topic,
)
from redis_streaming_starter.actuator.context import ActuatorContext
from redis_streaming_starter.container import resolve

__all__ = ["routes"]

# Documented in the OpenAPI schema, checked by the library (400 with its message, not a 422).
ID_SCHEMA: JsonDict = {"pattern": "^[0-9]{1,19}-[0-9]{1,19}$"}  # 19 digits: always below 2**64
EntryId = Annotated[str, Field(json_schema_extra=ID_SCHEMA)]
Group = Annotated[
    str | None, Query(description="Only this group's.", json_schema_extra=NAME_SCHEMA)
]

_PREVIEW_BYTES = 1024  # payload shown per entry in a DLQ page; GET one entry for all of it
_MAX_JSON_DEPTH = 64


class DeadLetterView(CamelModel):
    """A dead letter. ``payload`` is the decoded JSON value (``payloadEncoding`` ``json``), the
    text (``text``) or base64 of the bytes (``base64``); pages show at most 1 KiB of it."""

    id: str
    partition: int
    group: str
    consumer: str
    attempts: int
    reason: str
    error_type: str
    error: str
    traceback: str | None = Field(description="Only when one dead letter is fetched.")
    origin_id: str = Field(description="Id of the original entry in the partition stream.")
    failed_at: int = Field(description="Epoch ms.")
    key: str | None
    headers: dict[str, str]
    content_type: str
    payload: Any
    payload_encoding: Literal["json", "text", "base64"]
    payload_size: int = Field(description="Size of the raw payload in bytes.")
    payload_truncated: bool


class DeadLetterPage(CamelModel):
    topic: str
    total: int = Field(description="Dead letters of the topic, all groups.")
    entries: list[DeadLetterView] = Field(description="Newest first.")
    next: str | None = Field(description="Pass as ?after= for the next page; null at the end.")


class ReplayRequest(BaseModel):
    """``{"ids": [...]}`` replays those; ``{"all": true}`` every dead letter of the topic;
    ``group`` limits either to that group's."""

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "oneOf": [
                {"required": ["ids"], "properties": {"ids": {"type": "array"},
                                                     "all": {"const": False}}},
                {"required": ["all"], "properties": {"ids": {"type": "null"},
                                                     "all": {"const": True}}},
            ]
        }
    )  # fmt: skip

    ids: list[EntryId] | None = Field(None, min_length=1, max_length=1000)
    group: str | None = Field(None, json_schema_extra=NAME_SCHEMA)
    all: bool = False


class Replayed(BaseModel):
    replayed: int


class Purged(BaseModel):
    purged: int


def _reject(value: str) -> Any:
    raise ValueError(f"not JSON-compatible: {value}")


def _finite(value: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value}")
    return number


def _shallow(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def _payload(raw: bytes, content_type: str, truncated: bool) -> tuple[Any, str]:
    """(value, encoding) of a payload, or of its start when ``truncated``: JSON when it is
    complete, parses and can be rendered; else UTF-8 text (a cut never splits a character);
    else base64."""
    if content_type == "application/json" and not truncated:
        try:
            value = json.loads(raw, parse_constant=_reject, parse_float=_finite)
        except (ValueError, RecursionError):
            pass
        else:
            if _shallow(value, _MAX_JSON_DEPTH):
                return value, "json"
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(raw, not truncated), "text"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), "base64"


def _view(e: DeadLetterEntry, full: bool = False) -> DeadLetterView:
    """A dead letter as shown: in full (one entry), or as a page shows it (from
    ``DeadLetters.page``: the payload's first 1 KiB, no traceback)."""
    payload, encoding = _payload(e.payload, e.content_type, e.payload_truncated)
    return DeadLetterView(
        id=e.id, partition=e.partition, group=e.group, consumer=e.consumer, attempts=e.attempts,
        reason=e.reason, error_type=e.error_type, error=e.error,
        traceback=e.traceback if full else None, origin_id=e.origin_id, failed_at=e.failed_at,
        key=e.key, headers=e.headers, content_type=e.content_type, payload=payload,
        payload_encoding=encoding, payload_size=e.payload_size,
        payload_truncated=e.payload_truncated,
    )  # fmt: skip


def routes(ctx: ActuatorContext) -> APIRouter:
    """The ``dlq`` endpoints when exposed."""
    router = ctx.router(sensitive=True, tags=["actuator"])
    base, guarded = RESPONSES, GUARDED_RESPONSES

    async def dead_letters(topic: str) -> DeadLetters:
        found = await (await admin_of(ctx)).store.get(validate_name(topic))
        if found is None:
            raise HTTPException(404, missing_topic(topic))
        letters: DeadLetters = await resolve(ctx.app.container.dead_letters)
        return letters

    if not ctx.is_exposed("dlq"):
        return router

    @router.get("/topics/{topic}/dlq", summary="Browse dead letters, newest first", responses=base)
    async def list_dead_letters(
        topic: Topic,
        group: Group = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 50,
        after: Annotated[
            str | None,
            Query(description="`next` of the previous page.", json_schema_extra=ID_SCHEMA),
        ] = None,
    ) -> DeadLetterPage:
        with guard():
            dlq = await dead_letters(topic)
            page = await dlq.page(topic, group, limit, after, preview_bytes=_PREVIEW_BYTES)
            total = await dlq.length(topic)
        return DeadLetterPage(
            topic=topic, total=total, entries=[_view(e) for e in page.entries], next=page.next
        )

    @router.get("/topics/{topic}/dlq/{id}", summary="One dead letter, in full", responses=base)
    async def get_dead_letter(
        topic: Topic, id: Annotated[str, Path(json_schema_extra=ID_SCHEMA)]
    ) -> DeadLetterView:
        if id == "replay":  # GET of the POST-only .../dlq/replay: not a dead-letter id
            raise HTTPException(405, "replay takes POST", headers={"Allow": "POST"})
        with guard():
            entry = await (await dead_letters(topic)).get(topic, validate_entry_id(id))
        if entry is None:
            raise HTTPException(404, f"no dead letter {id!r} in topic {topic!r}; GET the "
                                "topic's /dlq for the ids")  # fmt: skip
        return _view(entry, True)

    @router.post(
        "/topics/{topic}/dlq/replay", summary="Send dead letters back to their group",
        responses={**guarded, 409: {"model": Problem, "description": "Some could not be "
                   "appended (a target key of the wrong type); they stay in the DLQ."}},
        description="Each goes to the group that failed it (only that group), as attempt 1, "
        "and leaves the DLQ once it is appended. Ids not in the DLQ are skipped.",
    )  # fmt: skip
    async def replay(topic: Topic, body: ReplayRequest) -> Replayed:
        if (body.ids is None) == (not body.all):
            raise HTTPException(400, 'give either {"ids": [...]} or {"all": true} (each '
                                'optionally with "group")')  # fmt: skip
        with guard():
            dlq = await dead_letters(topic)
            return Replayed(replayed=await dlq.replay(topic, body.ids, body.group))

    @router.delete(
        "/topics/{topic}/dlq", summary="Delete dead letters (all, or ?ids=)",
        responses=guarded,
    )  # fmt: skip
    async def purge(
        topic: Topic,
        ids: Annotated[
            list[EntryId] | None,
            Query(max_length=1000, description="Only these (repeat ids=)."),
        ] = None,
    ) -> Purged:
        with guard():
            dlq = await dead_letters(topic)
            return Purged(purged=await dlq.purge(topic, ids))

    return router
