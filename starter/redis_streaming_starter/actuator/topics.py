"""Actuator endpoints of topics: ``/topics`` (list, create) and ``/topics/{topic}`` (describe,
delete); exposure id ``topics``, POST and DELETE need the token. Errors as in :mod:`._http`, plus
409 for a topic that exists with other settings, or that this application's listeners consume
(on delete)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Response
from pydantic import BeforeValidator, Field

from redis_streaming import GroupInfo, TopicInfo
from redis_streaming.integration import TopicMeta, validate_name
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

__all__ = ["routes"]

_MAX_INT = 2**53 - 1  # retention values stay exact in Lua (doubles)


def _json_int(value: Any) -> Any:
    if isinstance(value, bool | str):  # pydantic would read true as 1 and "5" as 5
        raise ValueError("must be a JSON integer")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_int)]


class TopicSummary(CamelModel):
    """A topic's metadata. Retention values of 0 mean unlimited."""

    name: str
    partitions: int
    created_ms: int = Field(description="Creation time on the Redis server's clock, epoch ms.")
    retention_max_len: int
    retention_max_age_ms: int


class TopicList(CamelModel):
    topics: list[TopicSummary]


class GroupView(CamelModel):
    """A consumer group on one partition (lag and pending are message counts)."""

    name: str
    pending: int
    lag: int
    consumers: int
    owner: str | None = Field(description="Consumer id holding the partition's lease.")
    last_delivered_id: str
    retry_backlog: int


class PartitionView(CamelModel):
    partition: int
    length: int
    first_id: str | None
    last_id: str | None
    groups: list[GroupView]


class TopicDetails(CamelModel):
    """``Admin.describe_topic``: partitions with their groups, per-group totals, DLQ length and
    retries not yet due. Retention values of 0 mean unlimited."""

    name: str
    partitions: list[PartitionView]
    groups: list[GroupView] = Field(description="Each group summed over the partitions.")
    dlq_length: int
    retry_backlog: int = Field(description="Retries scheduled and not yet due, all groups.")
    created_ms: int
    retention_max_len: int
    retention_max_age_ms: int


class TopicCreate(CamelModel):
    """A topic to create (idempotent when it exists with the same settings)."""

    name: str = Field(description="1 to 200 characters from A-Z a-z 0-9 . _ -",
                      json_schema_extra=NAME_SCHEMA)  # fmt: skip
    partitions: Annotated[int, Field(ge=1, le=4096), BeforeValidator(_json_int)] | None = Field(
        None, description="Default: mq.default_partitions."
    )
    retention_max_len: JsonInt = Field(
        0, ge=0, le=_MAX_INT, description="Entries kept; 0 = unlimited."
    )
    retention_max_age_ms: JsonInt = Field(
        0, ge=0, le=_MAX_INT, description="Max age; 0 = unlimited."
    )


def _group(g: GroupInfo) -> GroupView:
    return GroupView(
        name=g.name, pending=g.pending, lag=g.lag, consumers=g.consumers, owner=g.owner,
        last_delivered_id=g.last_delivered_id, retry_backlog=g.retry_backlog,
    )  # fmt: skip


def _details(info: TopicInfo) -> TopicDetails:
    return TopicDetails(
        name=info.name,
        partitions=[
            PartitionView(partition=p.partition, length=p.length, first_id=p.first_id,
                          last_id=p.last_id, groups=[_group(g) for g in p.groups])
            for p in info.partitions
        ],
        groups=[_group(g) for g in info.group_totals().values()],
        dlq_length=info.dlq_length, retry_backlog=info.retry_backlog, created_ms=info.created_ms,
        retention_max_len=info.retention_max_len, retention_max_age_ms=info.retention_max_age_ms,
    )  # fmt: skip


def _summary(meta: TopicMeta) -> TopicSummary:
    return TopicSummary(
        name=meta.name,
        partitions=meta.partitions,
        created_ms=meta.created_ms,
        retention_max_len=meta.retention_max_len,
        retention_max_age_ms=meta.retention_max_age_ms,
    )


def routes(ctx: ActuatorContext) -> APIRouter:
    """The ``topics`` endpoints when exposed (the ``dlq`` ones are in :mod:`.dlq`)."""
    router = ctx.router(tags=["actuator"])
    if not ctx.is_exposed("topics"):
        return router

    @router.get(
        "/topics", summary="Every topic with its partition count", responses={503: RESPONSES[503]}
    )
    async def list_topics() -> TopicList:
        with guard():
            admin = await admin_of(ctx)
            metas = await admin.store.get_many(await admin.list_topics())  # without the deleted
        return TopicList(topics=[_summary(meta) for meta in metas])

    @router.get(
        "/topics/{topic}", summary="Partitions, groups, lag, pending, owners", responses=RESPONSES
    )
    async def describe_topic(topic: Topic) -> TopicDetails:
        with guard():
            return _details(await (await admin_of(ctx)).describe_topic(topic))

    @router.post(
        "/topics", summary="Create a topic", status_code=201,
        responses={**GUARDED_RESPONSES,
                   200: {"model": TopicSummary, "description": "Exists already."},
                   409: {"model": Problem, "description": "Exists with other settings."}},
    )  # fmt: skip
    async def create_topic(body: TopicCreate, response: Response) -> TopicSummary:
        if body.name in (".", ".."):
            raise HTTPException(
                400, f"a topic named {body.name!r} could not be reached here: clients "
                "normalise '.' and '..' out of URL paths (/topics/.. is /topics); choose "
                "another name",
            )  # fmt: skip
        with guard():
            admin = await admin_of(ctx)
            existed = await admin.store.get(validate_name(body.name)) is not None
            partitions = body.partitions or ctx.app.settings.mq.default_partitions
            try:
                meta = await admin.create_topic(
                    body.name, partitions, retention_max_len=body.retention_max_len,
                    retention_max_age_ms=body.retention_max_age_ms,
                )  # fmt: skip
            except ValueError as exc:  # the input is valid: it conflicts with the topic
                raise HTTPException(409, str(exc)) from exc
        if existed:
            response.status_code = 200
        return _summary(meta)

    @router.delete(
        "/topics/{topic}", summary="Delete a topic and every key it has", status_code=204,
        responses={**GUARDED_RESPONSES,
                   409: {"model": Problem, "description": "Consumed here."}},
        description="Refused (409) while this application has listeners on the topic: they "
        "would recreate it at once. Stop other producers and consumers first too.",
    )  # fmt: skip
    async def delete_topic(topic: Topic) -> Response:
        consumer = ctx.app.consumer
        users = sorted(s.id for s in consumer.subscriptions if s.topic == topic) if consumer else []
        if users:
            raise HTTPException(
                409, f"topic {topic!r} is consumed by listener(s) {', '.join(users)} of this "
                "application, which would recreate it at once; stop the application and "
                f"delete it with `redis-streaming topics delete {topic} --yes`",
            )  # fmt: skip
        with guard():
            if await (await admin_of(ctx)).delete_topic(topic) == 0:
                raise HTTPException(404, missing_topic(topic))
        return Response(status_code=204)

    return router
