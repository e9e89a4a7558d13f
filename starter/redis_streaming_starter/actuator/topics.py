"""``/topics`` (admin: list, describe, create, delete) and ``/topics/{topic}/dlq`` (dead letters:
browse, get, replay, purge).

Errors are ``{"detail": "..."}`` saying what to do: 400 for bad input (names, ids; the
library's message), 404 for an unknown topic or dead letter, 409 for a topic that exists with
other settings (or that this application's listeners consume, on delete), 503 when Redis cannot
be reached or the application has no connection. Never a 500 for bad input.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from redis_streaming import (
    Admin,
    GroupInfo,
    RedisStreamingError,
    RedisUnavailable,
    TopicInfo,
    TopicNotFound,
)
from redis_streaming.integration import NAME_PATTERN, is_connection_error, validate_name
from redis_streaming_starter.actuator.context import ActuatorContext
from redis_streaming_starter.container import resolve

__all__ = ["routes"]

_MAX_INT = 2**53 - 1  # retention values stay exact in Lua (doubles)
# Documented in the OpenAPI schema, checked by the library (400 with its message, not a 422).
NAME_SCHEMA: JsonDict = {"pattern": f"^{NAME_PATTERN}$"}
ID_SCHEMA: JsonDict = {"pattern": "^[0-9]{1,19}-[0-9]{1,19}$"}  # 19 digits: always below 2**64
Topic = Annotated[str, Path(description="Topic name.", json_schema_extra=NAME_SCHEMA)]
Group = Annotated[
    str | None, Query(description="Only this group's.", json_schema_extra=NAME_SCHEMA)
]
EntryId = Annotated[str, Field(json_schema_extra=ID_SCHEMA)]


def _json_int(value: Any) -> Any:
    if isinstance(value, bool | str):  # pydantic would read true as 1 and "5" as 5
        raise ValueError("must be a JSON integer")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_int)]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


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


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def routes(ctx: ActuatorContext) -> APIRouter:
    """The ``topics`` endpoints when exposed (the ``dlq`` ones are in :mod:`.dlq`)."""
    router = ctx.router(tags=["actuator"])
    base, guarded = RESPONSES, GUARDED_RESPONSES

    async def admin() -> Admin:
        return await admin_of(ctx)

    if ctx.is_exposed("topics"):

        @router.get(
            "/topics", summary="Every topic with its partition count", responses={503: base[503]}
        )
        async def list_topics() -> TopicList:
            with guard():
                a = await admin()
                names = await a.list_topics()
                pipe = a.redis.pipeline(transaction=False)
                for name in names:
                    pipe.hgetall(a.keys.topic(name))
                metas = await pipe.execute()
            return TopicList(
                topics=[
                    TopicSummary(
                        name=name, partitions=max(1, _int(m.get(b"partitions"))),
                        created_ms=_int(m.get(b"created_ms")),
                        retention_max_len=_int(m.get(b"retention_max_len")),
                        retention_max_age_ms=_int(m.get(b"retention_max_age_ms")),
                    )
                    for name, m in zip(names, metas, strict=True) if m  # deleted meanwhile
                ]
            )  # fmt: skip

        @router.get(
            "/topics/{topic}", summary="Partitions, groups, lag, pending, owners", responses=base
        )
        async def describe_topic(topic: Topic) -> TopicDetails:
            with guard():
                return _details(await (await admin()).describe_topic(topic))

        @router.post(
            "/topics", summary="Create a topic", status_code=201,
            responses={**guarded, 200: {"model": TopicSummary, "description": "Exists already."},
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
                a = await admin()
                existed = await a.store.get(validate_name(body.name)) is not None
                partitions = body.partitions or ctx.app.settings.mq.default_partitions
                try:
                    meta = await a.create_topic(
                        body.name, partitions, retention_max_len=body.retention_max_len,
                        retention_max_age_ms=body.retention_max_age_ms,
                    )  # fmt: skip
                except ValueError as exc:  # the input is valid: it conflicts with the topic
                    raise HTTPException(409, str(exc)) from exc
            if existed:
                response.status_code = 200
            return TopicSummary(
                name=meta.name, partitions=meta.partitions, created_ms=meta.created_ms,
                retention_max_len=meta.retention_max_len,
                retention_max_age_ms=meta.retention_max_age_ms,
            )  # fmt: skip

        @router.delete(
            "/topics/{topic}", summary="Delete a topic and every key it has", status_code=204,
                responses={**guarded, 409: {"model": Problem, "description": "Consumed here."}},
            description="Refused (409) while this application has listeners on the topic: they "
            "would recreate it at once. Stop other producers and consumers first too.",
        )  # fmt: skip
        async def delete_topic(topic: Topic) -> Response:
            consumer = ctx.app.consumer
            users = (
                sorted(s.id for s in consumer.subscriptions if s.topic == topic) if consumer else []
            )
            if users:
                raise HTTPException(
                    409, f"topic {topic!r} is consumed by listener(s) {', '.join(users)} of this "
                    "application, which would recreate it at once; stop the application and "
                    f"delete it with `redis-streaming topics delete {topic} --yes`",
                )  # fmt: skip
            with guard():
                if await (await admin()).delete_topic(topic) == 0:
                    raise HTTPException(404, missing_topic(topic))
            return Response(status_code=204)

    return router
