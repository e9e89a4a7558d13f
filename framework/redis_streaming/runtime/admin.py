"""Jobs seen from Redis: the catalogue of jobs, their progress per partition, and reset.

Every process that runs a job writes the job's shape (stages, topics, stores) into the
namespace's job catalogue when it starts it (:meth:`JobCatalog.register`). Operators (the CLI,
the actuator) read the catalogue and the committed task hashes, leases, consumer groups and
state hashes, so they see every instance's work, not only their own process's.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis_streaming._redis.names import validate_name
from redis_streaming._redis.replies import as_text
from redis_streaming.cluster import is_cluster
from redis_streaming.errors import JobNotFound, JobRunning
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.topics import TopicStore
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.runtime.reader import StateReader
from redis_streaming.window.clock import NEVER

if TYPE_CHECKING:
    from redis_streaming.runtime.job import Job

__all__ = [
    "JobCatalog",
    "JobDescription",
    "JobReset",
    "PartitionProgress",
    "StageDescription",
    "StoreSize",
]


@dataclass(frozen=True)
class PartitionProgress:
    """One stage's task on one input partition, as its last commit left it.

    ``owner``: the consumer holding the partition's lease (None: nobody runs it now).
    ``watermark``: event time in epoch ms (None before any record). ``lag``: entries of the
    partition the stage has not read yet; ``pending``: read, not yet committed. ``timers``:
    pending event-time timers (each open window of a key has one).
    """

    partition: int
    owner: str | None
    frontier: str | None
    committed_ms: int | None
    watermark: int | None
    lag: int | None
    pending: int
    timers: int = 0


@dataclass(frozen=True)
class StoreSize:
    """A state store over all partitions: keys and approximate bytes (``MEMORY USAGE``)."""

    name: str
    keys: int
    bytes: int
    partitions: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class StageDescription:
    """One stage: its consumer group on its input topic, its partitions and stores."""

    id: str
    group: str
    topic: str
    internal: bool
    outputs: list[str]
    partitions: list[PartitionProgress]
    stores: list[StoreSize]

    @property
    def lag(self) -> int:
        """Entries not yet read over all partitions (unknown lags count 0)."""
        return sum(p.lag or 0 for p in self.partitions)


@dataclass(frozen=True)
class JobDescription:
    """A job as Redis holds it: ``running`` when any of its partitions is leased now."""

    name: str
    stages: list[StageDescription]
    registered_ms: int

    @property
    def running(self) -> bool:
        """True while some process owns a partition of the job."""
        return any(p.owner for s in self.stages for p in s.partitions)

    @property
    def owners(self) -> list[str]:
        """The consumers that own a partition of the job now."""
        return sorted({p.owner for s in self.stages for p in s.partitions if p.owner})


@dataclass(frozen=True)
class JobReset:
    """What :meth:`JobCatalog.reset` deleted."""

    name: str
    keys_deleted: int
    groups_destroyed: int
    internal_entries_deleted: int


class JobCatalog:
    """The namespace's jobs: registered by the processes that run them, read by operators."""

    def __init__(self, redis: Any, options: MQOptions | None = None) -> None:
        self.redis = redis
        self.options = options or MQOptions()
        self.keys = RuntimeKeys(self.options.namespace)
        self.mq = Keys(self.options.namespace)
        self.catalogue = f"{self.options.namespace}:jobs"

    async def register(self, job: Job) -> None:
        """Record ``job``'s shape (idempotent; every instance writes the same)."""
        shape = {
            "stages": [
                {
                    "id": s.id,
                    "group": s.group,
                    "topic": s.topic,
                    "internal": s.internal,
                    "outputs": sorted(set().union(*s.output_topics())),
                    "stores": sorted(s.stores),
                    "ooo_ms": s.ooo_ms,
                }
                for s in job.stages
            ],
            "registered_ms": int(time.time() * 1000),
        }
        await self.redis.hset(self.catalogue, job.name, json.dumps(shape))

    async def names(self) -> list[str]:
        """The registered jobs' names, sorted."""
        return sorted(as_text(n) for n in await self.redis.hkeys(self.catalogue))

    async def _shape(self, name: str) -> dict[str, Any]:
        raw = await self.redis.hget(self.catalogue, validate_name(name, "job"))
        if raw is None:
            known = ", ".join(await self.names()) or "none"
            raise JobNotFound(
                f"no job named {name!r} has run on namespace {self.options.namespace!r} "
                f"(known jobs: {known}); a job is registered when a process first runs it"
            )
        shape: dict[str, Any] = json.loads(raw)
        return shape

    async def describe(self, name: str) -> JobDescription:
        """The job's stages with each partition's owner, frontier, last commit, watermark and
        lag, and each store's size. Raises :class:`~redis_streaming.JobNotFound`."""
        shape = await self._shape(name)
        stages = [await self._stage(name, s) for s in shape["stages"]]
        return JobDescription(name, stages, int(shape.get("registered_ms", 0)))

    async def _stage(self, job: str, s: dict[str, Any]) -> StageDescription:
        topic, group = s["topic"], s["group"]
        meta = await TopicStore(self.redis, self.options).get(topic)
        count = meta.partitions if meta is not None else 0
        pipe = self.redis.pipeline(transaction=False)
        for i in range(count):
            pipe.get(self.mq.lease(topic, i, group))
            pipe.hmget(
                self.keys.task(topic, i, group), ["frontier", "committed_ms", "max_ts", "wm_floor"]
            )
            pipe.zcard(self.keys.timers(topic, i, group))
        replies = await pipe.execute() if count else []
        partitions = []
        for i in range(count):
            owner, (frontier, committed, max_ts, floor), timers = replies[3 * i : 3 * i + 3]
            lag, pending = await self._group_lag(self.mq.stream(topic, i), group)
            watermark = _watermark(max_ts, floor, int(s.get("ooo_ms", 0)))
            partitions.append(
                PartitionProgress(
                    partition=i,
                    owner=None if owner is None else as_text(owner),
                    frontier=None if frontier is None else as_text(frontier),
                    committed_ms=None if committed is None else int(committed),
                    watermark=watermark,
                    lag=lag,
                    pending=pending,
                    timers=int(timers),
                )
            )
        reader = StateReader(self.redis, self.options)
        stores = []
        for store in s["stores"]:
            per = await reader.stats(job, store)
            stores.append(
                StoreSize(
                    store,
                    sum(k for k, _ in per.values()),
                    sum(b for _, b in per.values()),
                    per,
                )
            )
        return StageDescription(
            s["id"], group, topic, bool(s["internal"]), list(s["outputs"]), partitions, stores
        )

    async def _group_lag(self, stream: str, group: str) -> tuple[int | None, int]:
        try:
            groups = await self.redis.xinfo_groups(stream)
        except Exception:  # no stream yet: nothing to read
            return 0, 0
        for g in groups:
            if as_text(g["name"]) == group:
                lag = g.get("lag")
                return (None if lag is None else int(lag)), int(g.get("pending") or 0)
        length = int(await self.redis.xlen(stream))
        return length, 0  # no group yet: everything is still to read

    async def reset(self, name: str) -> JobReset:
        """Forget ``name``'s progress and state: its stages' consumer groups (a restarted job
        reads its inputs again from ``runtime.start``), task hashes, state stores, TTL
        indexes, timers, outboxes, forwarding marks and the entries of its internal
        (repartition) topics. Its input and output topics and dead letters stay.

        Refuses with :class:`~redis_streaming.JobRunning` while any process owns a partition
        of the job: stop every instance first."""
        description = await self.describe(name)
        if description.running:
            raise JobRunning(
                f"job {name!r} is running (partitions owned by {', '.join(description.owners)});"
                " stop every instance of it, then reset"
            )
        shape = await self._shape(name)
        keys: list[str] = []
        groups = 0
        internal_entries = 0
        for stage, s in zip(description.stages, shape["stages"], strict=True):
            topic, group = stage.topic, stage.group
            for p in stage.partitions:
                i = p.partition
                keys += [
                    self.keys.task(topic, i, group),
                    self.keys.timers(topic, i, group),
                    self.keys.wall_timers(topic, i, group),
                    self.keys.outbox(topic, i, group),
                    self.mq.retry(topic, i, group),
                    self.mq.redeliver(topic, i, group),
                ]
                for store in s["stores"]:
                    keys += [
                        self.keys.state(topic, i, name, store),
                        self.keys.ttl(topic, i, name, store),
                    ]
                stream = self.mq.stream(topic, i)
                if not await self.redis.exists(stream):
                    continue
                groups += int(await self.redis.xgroup_destroy(stream, group))
                if stage.internal:
                    internal_entries += int(await self.redis.xtrim(stream, maxlen=0))
            keys.append(self.mq.members(topic, group))
        keys += await self._scan(f"{self.options.namespace}:fwd:{{*}}:{name}")
        deleted = 0
        for key in keys:  # one by one: on a cluster the keys live in many slots
            deleted += int(await self.redis.delete(key))
        return JobReset(name, deleted, groups, internal_entries)

    async def _scan(self, match: str) -> list[str]:
        found: set[str] = set()
        if is_cluster(self.redis):
            for node in self.redis.get_primaries():
                async for key in self.redis.scan_iter(match=match, count=1000, target_nodes=node):
                    found.add(as_text(key))
        else:
            found = {as_text(k) async for k in self.redis.scan_iter(match=match, count=1000)}
        return sorted(found)


def _watermark(max_ts: Any, floor: Any, ooo_ms: int) -> int | None:
    base = NEVER if max_ts is None else int(max_ts) - ooo_ms
    mark = max(base, NEVER if floor is None else int(floor))
    return None if mark == NEVER else mark
