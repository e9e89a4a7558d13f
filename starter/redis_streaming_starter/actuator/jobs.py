"""``/jobs``: the application's stream-processing jobs; pause, resume, stop, start and reset.

What one job shows combines this process (its state, the partitions it owns here, counters
since start, the last error) with Redis (every partition's owner, watermark, lag and last
commit, and the size of each state store), so an instance shows the whole job's progress.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from redis_streaming import JobCatalog, JobDescription, JobNotFound, JobRunning
from redis_streaming_starter.actuator.context import ActuatorContext

__all__ = ["JobDetail", "JobStateChange", "Jobs", "routes"]

_STATES = {"paused": "paused", "pause": "paused", "running": "running", "resumed": "running",
           "resume": "running", "stopped": "stopped", "stop": "stopped"}  # fmt: skip
_PATTERN = "^(?:" + "|".join("".join(f"[{c.upper()}{c}]" for c in w) for w in _STATES) + ")$"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class PartitionDetail(_Model):
    """One input partition of a stage, as its last commit left it."""

    partition: int
    owner: str | None = Field(description="Consumer holding its lease (null: nobody).")
    watermark: int | None = Field(description="Event-time watermark, epoch ms.")
    watermark_lag_ms: int | None = Field(description="Now minus the watermark.")
    lag: int | None = Field(description="Entries not read yet.")
    pending: int = Field(description="Entries read, not committed yet.")
    timers: int = Field(description="Pending event-time timers (one per open window and key).")
    frontier: str | None = Field(description="Last committed entry id.")
    last_commit_age_ms: int | None = Field(description="Since its last commit.")


class StoreDetail(_Model):
    """A state store over every partition."""

    name: str
    keys: int
    bytes: int = Field(description="Approximate (MEMORY USAGE of its hashes).")


class StageDetail(_Model):
    """One stage: what it reads, writes and holds; counters are this process's since start."""

    id: str
    group: str
    topic: str
    internal: bool = Field(description="True for the job's own repartition topic.")
    outputs: list[str]
    owned_partitions: list[int] = Field(description="Partitions this process runs.")
    records_in: int
    records_out: int
    batches: int
    dead_lettered: int
    late_records: int
    windows_opened: int
    windows_closed: int
    lag: int = Field(description="Entries not read yet, over every partition.")
    last_commit_age_ms: int | None = Field(description="Since this process's last commit.")
    last_error: str | None
    partitions: list[PartitionDetail]
    stores: list[StoreDetail]


class JobSummary(_Model):
    """One job in the list."""

    name: str
    state: str = Field(
        description="created, running, paused, stopped, disabled (by settings) or failed."
    )
    stages: list[str]
    error: str | None = Field(description="Why its start failed, when it did.")


class Jobs(_Model):
    """The application's jobs, by name."""

    jobs: dict[str, JobSummary]


class JobDetail(JobSummary):
    """One job: its stages, their partitions and stores."""

    consumer_id: str | None = Field(description="This process's consumer name in the groups.")
    owners: list[str] = Field(description="Consumers owning one of its partitions now.")
    stage_details: list[StageDetail] = Field(alias="stageDetails")


class JobStateChange(BaseModel):
    """The state to put a job in: ``paused``, ``running`` (resume a paused job, start a stopped
    one) or ``stopped``, in any case."""

    model_config = ConfigDict(strict=True)

    state: str = Field(json_schema_extra={"pattern": _PATTERN}, examples=["paused", "running"])

    @field_validator("state")
    @classmethod
    def _normalise(cls, value: str) -> str:
        if value.lower() not in _STATES:
            raise ValueError("state must be 'paused', 'running' or 'stopped', in any case")
        return _STATES[value.lower()]


class JobResetResult(_Model):
    """What a reset deleted."""

    name: str
    keys_deleted: int
    groups_destroyed: int
    internal_entries_deleted: int


def _age(ms: int | None, now_ms: int) -> int | None:
    return None if ms is None else max(0, now_ms - ms)


def routes(ctx: ActuatorContext) -> APIRouter:
    """``GET /jobs``, ``GET /jobs/{name}``, ``POST /jobs/{name}`` and
    ``DELETE /jobs/{name}/state`` (both with the token), when ``jobs`` is exposed."""
    router = ctx.router(tags=["actuator"])
    if not ctx.is_exposed("jobs"):
        return router
    problems: dict[int | str, dict[str, Any]] = {
        503: {"description": "The application is not running."},
        404: {"description": "The application has no job of this name."},
    }
    changes: dict[int | str, dict[str, Any]] = {
        **problems,
        400: {"description": "The body is not JSON."},
        401: {"description": "Missing or wrong bearer token."},
        403: {"description": "No actuator token is configured."},
        409: {"description": "The job is not in a state that allows it."},
    }

    def find(name: str) -> Any:
        app = ctx.app
        if not app.running:
            raise HTTPException(
                503,
                "the application is not running (starting or stopping); retry once "
                "GET /health/readiness is UP",
            )
        try:
            return app.jobs.get(name)
        except KeyError as exc:
            raise HTTPException(404, f"{exc.args[0]} (GET /jobs)") from None

    def summary(app_job: Any) -> JobSummary:
        return JobSummary(
            name=app_job.name, state=app_job.state, stages=app_job.stages, error=app_job.error
        )

    async def detail(app_job: Any) -> JobDetail:
        now_ms = int(time.time() * 1000)
        try:
            described = await JobCatalog(ctx.app.redis, ctx.app.settings.mq).describe(app_job.name)
        except JobNotFound:  # never started on this namespace (disabled, or its start failed)
            described = JobDescription(app_job.name, [], 0)
        handle = app_job.handle
        local = {s.group: s for s in handle.status().stages} if handle is not None else {}
        stages = []
        for d in described.stages:
            s = local.get(d.group)
            stages.append(
                StageDetail(
                    id=d.id,
                    group=d.group,
                    topic=d.topic,
                    internal=d.internal,
                    outputs=d.outputs,
                    owned_partitions=s.owned_partitions if s else [],
                    records_in=s.records_in if s else 0,
                    records_out=s.records_out if s else 0,
                    batches=s.batches if s else 0,
                    dead_lettered=s.dead_lettered if s else 0,
                    late_records=s.late_records if s else 0,
                    windows_opened=s.windows_opened if s else 0,
                    windows_closed=s.windows_closed if s else 0,
                    lag=d.lag,
                    last_commit_age_ms=_age(s.last_commit_ms if s else None, now_ms),
                    last_error=s.last_error if s else None,
                    partitions=[
                        PartitionDetail(
                            partition=p.partition,
                            owner=p.owner,
                            watermark=p.watermark,
                            watermark_lag_ms=_age(p.watermark, now_ms),
                            lag=p.lag,
                            pending=p.pending,
                            timers=p.timers,
                            frontier=p.frontier,
                            last_commit_age_ms=_age(p.committed_ms, now_ms),
                        )
                        for p in d.partitions
                    ],
                    stores=[StoreDetail(name=x.name, keys=x.keys, bytes=x.bytes) for x in d.stores],
                )
            )
        return JobDetail(
            **summary(app_job).model_dump(),
            consumer_id=handle.consumer_id if handle is not None else None,
            owners=described.owners,
            stageDetails=stages,
        )

    @router.get("/jobs", summary="Every job: state and stages", response_model=Jobs)
    async def jobs() -> Jobs:
        find_running = ctx.app.running
        if not find_running:
            raise HTTPException(503, "the application is not running (starting or stopping)")
        return Jobs(jobs={n: summary(j) for n, j in ctx.app.jobs.jobs.items()})

    @router.get(
        "/jobs/{name}",
        summary="One job: stages, partitions (owner, watermark, lag), stores, errors",
        response_model=JobDetail,
        response_model_by_alias=True,
        responses=problems,
    )
    async def job(name: str) -> JobDetail:
        return await detail(find(name))

    @router.post(
        "/jobs/{name}",
        summary="Pause, resume, stop or start a job in this instance",
        description="paused: its tasks process nothing, partitions stay owned; running: "
        "resume, or start a stopped job; stopped: the batch in progress commits (or stays "
        "pending) and its partitions are released. Needs the actuator token.",
        response_model=JobDetail,
        response_model_by_alias=True,
        responses=changes,
    )
    async def change(name: str, body: JobStateChange) -> JobDetail:
        app_job = find(name)
        app = ctx.app
        if not app_job.enabled:
            raise HTTPException(
                409,
                f"job {name!r} is disabled by settings (runtime.jobs.{name}.enabled=false); "
                "enable it and restart the application",
            )
        handle, state = app_job.handle, app_job.state
        if body.state == "paused":
            if state not in ("running", "paused"):
                raise HTTPException(409, f"job {name!r} is {state}; only a running job pauses")
            handle.pause()
        elif body.state == "stopped":
            await app.jobs.stop(app_job, app.settings.runtime.shutdown_timeout_s)
        elif state == "paused":
            handle.resume()
        elif state in ("stopped", "failed", "created"):
            try:
                await app.jobs.start(app_job, app.run_job)
            except Exception as exc:
                raise HTTPException(409, f"job {name!r} could not start: {exc}") from None
        return await detail(app_job)

    @router.delete(
        "/jobs/{name}/state",
        summary="Reset a stopped job: its state, offsets and internal topics",
        description="Deletes its state stores, timers and consumer groups (it reads its inputs "
        "again from runtime.start when started) and empties its repartition topics. Refused "
        "(409) while it runs here or in any other instance. Needs the actuator token.",
        response_model=JobResetResult,
        responses=changes,
    )
    async def reset(name: str) -> JobResetResult:
        app_job = find(name)
        if app_job.state in ("running", "paused"):
            raise HTTPException(
                409,
                f"job {name!r} is {app_job.state} in this instance; stop it first "
                f'(POST /jobs/{name} {{"state": "stopped"}})',
            )
        try:
            done = await JobCatalog(ctx.app.redis, ctx.app.settings.mq).reset(name)
        except JobRunning as exc:
            raise HTTPException(409, str(exc)) from None
        except JobNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        return JobResetResult(
            name=done.name,
            keys_deleted=done.keys_deleted,
            groups_destroyed=done.groups_destroyed,
            internal_entries_deleted=done.internal_entries_deleted,
        )

    return router
