"""What :meth:`Admin.describe_topic` reports (docs/design.md, "Admin and retention"): the
snapshot dataclasses, the reads behind them, and the lag count where Redis cannot tell it. Also
the small reply helpers the other admin modules share."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from redis_streaming._redis.replies import as_text
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.scripts import script
from redis_streaming.mq.topics import TopicMeta

__all__ = [
    "GroupInfo",
    "PartitionInfo",
    "PendingEntry",
    "TopicInfo",
    "count_after",
    "describe",
    "group_lag",
    "groups_reply",
    "queue_groups",
    "stream_groups",
    "unknown_lags",
    "xinfo_lag",
]

_COUNT_AFTER = script("count_after")


def _id(value: Any) -> tuple[int, int]:
    ms, _, seq = as_text(value).partition("-")
    return int(ms), int(seq or 0)


@dataclass(slots=True, frozen=True)
class GroupInfo:
    """One consumer group on one partition.

    ``pending``: entries of the partition stream delivered to the group and not acknowledged.
    ``lag``: entries of the partition stream the group has not read yet (a message count, never
    milliseconds; entries trimmed before being read no longer count). ``consumers``: consumer
    names the group has on the stream. ``owner``: the consumer id holding the partition's lease
    for the group, ``None`` when free. ``last_delivered_id``: the group's position.
    ``retry_backlog``: retries scheduled for the group on this partition and not yet due.
    """

    name: str
    pending: int
    lag: int
    consumers: int
    owner: str | None
    last_delivered_id: str = "0-0"
    retry_backlog: int = 0


@dataclass(slots=True, frozen=True)
class PartitionInfo:
    """One partition stream: entry count, first and last entry ids (``None`` when empty), and
    the groups that have a position on it."""

    partition: int
    length: int
    first_id: str | None
    last_id: str | None
    groups: list[GroupInfo]


@dataclass(slots=True, frozen=True)
class TopicInfo:
    """A topic as :meth:`Admin.describe_topic` saw it (a snapshot, not one atomic read).

    ``dlq_length``: entries in the topic's dead-letter stream. ``retry_backlog``: retries
    scheduled and not yet due, over all partitions and groups. Retention values of 0 mean
    unlimited; ``created_ms`` is the server's clock at creation, epoch ms.
    """

    name: str
    partitions: list[PartitionInfo]
    dlq_length: int
    retry_backlog: int
    created_ms: int
    retention_max_len: int
    retention_max_age_ms: int

    def group_totals(self) -> dict[str, GroupInfo]:
        """Each group summed over the partitions: pending, lag, retry backlog and consumers
        added up; ``owner`` is ``None`` and ``last_delivered_id`` is empty (per partition)."""
        totals: dict[str, GroupInfo] = {}
        for p in self.partitions:
            for g in p.groups:
                t = totals.get(g.name, GroupInfo(g.name, 0, 0, 0, None, ""))
                totals[g.name] = GroupInfo(
                    g.name, t.pending + g.pending, t.lag + g.lag, t.consumers + g.consumers,
                    None, "", t.retry_backlog + g.retry_backlog,
                )  # fmt: skip
        return dict(sorted(totals.items()))


@dataclass(slots=True, frozen=True)
class PendingEntry:
    """An entry delivered to a group and not acknowledged. ``stream`` is ``"main"`` for the
    partition stream and ``"redeliver"`` for the group's redelivery stream (retries, replays);
    ``idle_ms`` is the time since its last delivery; ``deliveries`` counts deliveries."""

    partition: int
    id: str
    consumer: str
    idle_ms: int
    deliveries: int
    stream: Literal["main", "redeliver"] = "main"


def queue_groups(pipe: Any, key: str) -> None:
    """Add what :func:`groups_reply` needs for stream ``key`` to ``pipe`` (two commands)."""
    pipe.exists(key)
    pipe.xinfo_groups(key)


def groups_reply(exists: Any, groups: Any) -> list[dict[str, Any]]:
    """The groups of one stream from the two replies :func:`queue_groups` queued (pipeline run
    with ``raise_on_error=False``); a missing stream has no groups, other errors are raised."""
    if isinstance(exists, Exception):
        raise exists
    if not exists:
        return []
    if isinstance(groups, Exception):
        raise groups
    return list(groups)


async def stream_groups(redis: Any, streams: list[str]) -> list[list[dict[str, Any]]]:
    """``XINFO GROUPS`` of each stream, one round trip; a missing stream has no groups."""
    pipe = redis.pipeline(transaction=False)
    for key in streams:
        queue_groups(pipe, key)
    replies = await pipe.execute(raise_on_error=False)
    return [groups_reply(e, g) for e, g in zip(replies[::2], replies[1::2], strict=True)]


def xinfo_lag(group: dict[str, Any], length: int) -> int | None:
    """The ``lag`` of a group's ``XINFO GROUPS`` entry capped at the stream's ``length``
    (entries trimmed before being read no longer count); ``None`` when Redis gave none."""
    lag = group.get("lag")
    return None if lag is None else min(max(int(lag), 0), length)


def group_lag(
    group: dict[str, Any], length: int, first: str | None, last: str | None
) -> int | None:
    """A group's lag on a partition stream as :meth:`Admin.describe_topic` reports it:
    :func:`xinfo_lag`, else what the stream's ends (``first`` and ``last`` entry ids) decide.
    ``None`` when it must be counted with :func:`count_after` (cap that count at ``length``)."""
    lag = xinfo_lag(group, length)
    if lag is None:
        known = _known_lag(as_text(group["last-delivered-id"]), length, first, last)
        if known is not None:
            lag = min(known, length)
    return lag


async def unknown_lags(
    redis: Any, jobs: list[tuple[str, dict[str, Any], int]], walk: int
) -> list[int]:
    """Lags that ``XINFO GROUPS`` did not give, for ``(stream, group entry, stream length)``
    jobs: the stream's ends are read (one round trip), then :func:`group_lag` and, where the
    ends do not settle it, :func:`count_after`. The same numbers as describe's."""
    pipe = redis.pipeline(transaction=False)
    for key, _, _ in jobs:
        pipe.xrange(key, count=1)
        pipe.xrevrange(key, count=1)
    ends = await pipe.execute()
    lags: list[int | None] = []
    counting: list[tuple[int, str, str]] = []
    for k, (key, group, length) in enumerate(jobs):
        first, last = ends[2 * k : 2 * k + 2]
        lag = group_lag(
            group,
            length,
            as_text(first[0][0]) if first else None,
            as_text(last[0][0]) if last else None,
        )
        if lag is None:
            counting.append((k, key, as_text(group["last-delivered-id"])))
        lags.append(lag)
    if counting:
        counts = await count_after(redis, [(key, pos) for _, key, pos in counting], walk)
        for (k, _, _), count in zip(counting, counts, strict=True):
            lags[k] = min(count, jobs[k][2])
    return [int(lag or 0) for lag in lags]


async def describe(redis: Any, keys: Keys, topic: str, meta: TopicMeta, walk: int) -> TopicInfo:
    """The :class:`TopicInfo` of ``topic`` (its metadata already read): one pipelined round
    trip per phase, then lag counting in script calls walking at most ``walk`` entries."""
    n = meta.partitions
    streams = [keys.stream(topic, i) for i in range(n)]
    pipe = redis.pipeline(transaction=False)
    pipe.xlen(keys.dlq(topic))
    for key in streams:
        pipe.xlen(key)
        pipe.xrange(key, count=1)
        pipe.xrevrange(key, count=1)
    dlq_length, *ends = await pipe.execute()
    groups = await stream_groups(redis, streams)
    names = sorted({as_text(g["name"]) for gs in groups for g in gs})
    pipe = redis.pipeline(transaction=False)
    for i in range(n):
        for name in names:
            pipe.get(keys.lease(topic, i, name))
            pipe.zcard(keys.retry(topic, i, name))
    leases = await pipe.execute()
    partitions: list[PartitionInfo] = []
    counting: list[tuple[int, int, str]] = []  # (partition, group index, position)
    for i in range(n):
        length, first, last = ends[3 * i : 3 * i + 3]
        first_id = as_text(first[0][0]) if first else None
        last_id = as_text(last[0][0]) if last else None
        infos: list[GroupInfo] = []
        for g in groups[i]:
            name, position = as_text(g["name"]), as_text(g["last-delivered-id"])
            lag = group_lag(g, length, first_id, last_id)
            if lag is None:
                counting.append((i, len(infos), position))
            j = 2 * (i * len(names) + names.index(name))
            owner = None if leases[j] is None else as_text(leases[j])
            infos.append(
                GroupInfo(
                    name, int(g["pending"]), lag or 0, int(g["consumers"]), owner, position,
                    int(leases[j + 1]),
                )
            )  # fmt: skip
        partitions.append(PartitionInfo(i, length, first_id, last_id, infos))
    if counting:
        counts = await count_after(redis, [(streams[i], pos) for i, _, pos in counting], walk)
        for (i, k, _), count in zip(counting, counts, strict=True):
            part = partitions[i]
            part.groups[k] = replace(part.groups[k], lag=min(count, part.length))
    return TopicInfo(
        topic, partitions, int(dlq_length),
        sum(g.retry_backlog for p in partitions for g in p.groups), meta.created_ms,
        meta.retention_max_len, meta.retention_max_age_ms,
    )  # fmt: skip


async def count_after(redis: Any, jobs: list[tuple[str, str]], walk: int) -> list[int]:
    """Entries after each ``(stream, id)``, all jobs pipelined per round of walking; each
    ``count_after.lua`` call walks at most ``walk`` entries per side, then resumes."""
    await _COUNT_AFTER.load(redis)
    state: list[list[Any]] = [["", 0, "", 0] for _ in jobs]
    result: list[int | None] = [None] * len(jobs)
    while any(r is None for r in result):
        todo = [k for k, r in enumerate(result) if r is None]
        pipe = redis.pipeline(transaction=False)
        for k in todo:
            key, position = jobs[k]
            _COUNT_AFTER.queue(pipe, [key], [position, walk, *state[k]])
        for k, reply in zip(todo, await pipe.execute(), strict=True):
            if int(reply[0]):
                result[k] = int(reply[1])
            else:
                state[k] = [as_text(reply[1]), int(reply[2]), as_text(reply[3]), int(reply[4])]
    return [int(r or 0) for r in result]


def _known_lag(position: str, length: int, first: str | None, last: str | None) -> int | None:
    """The lag when the ends of the stream decide it, else ``None`` (it must be counted)."""
    if length == 0 or last is None or first is None or _id(position) >= _id(last):
        return 0
    if _id(position) < _id(first):
        return length
    return None
