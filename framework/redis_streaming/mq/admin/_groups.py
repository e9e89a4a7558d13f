"""Group inspection and repositioning behind :meth:`Admin.pending` and
:meth:`Admin.reset_group` (docs/design.md, "Admin and retention"): which partitions a call
covers, reading pending entries, and moving a group's position (to an end, an entry id, or a
time)."""

from __future__ import annotations

import re
from typing import Any

from redis_streaming._redis.errors import is_busygroup, is_nogroup
from redis_streaming._redis.replies import as_text
from redis_streaming.errors import ConfigurationError, PartitionOutOfRange
from redis_streaming.mq.admin._describe import PendingEntry, stream_groups
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.topics import TopicMeta

__all__ = ["partitions_of", "pending_entries", "pending_replies", "reset_positions"]

_ENTRY_ID = re.compile(r"\d+(-\d+)?")


def partitions_of(meta: TopicMeta, partition: int | None) -> list[int]:
    """All partitions of the topic, or just ``partition``; raises
    :class:`~redis_streaming.errors.PartitionOutOfRange` when the topic has no such one."""
    if partition is None:
        return list(range(meta.partitions))
    if not isinstance(partition, int) or not 0 <= partition < meta.partitions:
        raise PartitionOutOfRange(meta.name, partition, meta.partitions)
    return [partition]


async def pending_replies(
    redis: Any, keys: Keys, topic: str, group: str, parts: list[int], count: int
) -> list[Any]:
    """``XPENDING`` of ``group`` on each partition's main then redelivery stream, one round
    trip; error replies are returned, not raised (see :func:`pending_entries`)."""
    pipe = redis.pipeline(transaction=False)
    for i in parts:
        for key in (keys.stream(topic, i), keys.redeliver(topic, i, group)):
            pipe.xpending_range(key, group, "-", "+", count)
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    return replies


def pending_entries(parts: list[int], replies: list[Any], count: int) -> list[PendingEntry]:
    """The first ``count`` entries of :func:`pending_replies`' ``replies``; a stream where the
    group has no position (NOGROUP) has none, any other error reply is raised."""
    it = iter(replies)
    out: list[PendingEntry] = []
    for i in parts:
        for kind in ("main", "redeliver"):
            reply = next(it)
            if isinstance(reply, Exception):
                if is_nogroup(reply):
                    continue
                raise reply
            out += [
                PendingEntry(
                    i, as_text(p["message_id"]), as_text(p["consumer"]),
                    int(p["time_since_delivered"]), int(p["times_delivered"]),
                    "main" if kind == "main" else "redeliver",
                )
                for p in reply
            ]  # fmt: skip
    return out[:count]


async def reset_positions(
    redis: Any,
    keys: Keys,
    meta: TopicMeta,
    topic: str,
    group: str,
    to: str | int,
    target: str,
    parts: list[int],
) -> None:
    """Set ``group``'s position on ``parts`` to ``target`` (from :func:`_target`; for an int
    ``to``, the last entry before that time), creating it where missing. Raises
    :class:`~redis_streaming.errors.ConfigurationError` if the group has no position at all."""
    streams = [keys.stream(topic, i) for i in range(meta.partitions)]
    groups = await stream_groups(redis, streams)
    has = [any(as_text(g["name"]) == group for g in gs) for gs in groups]
    if not any(has):
        raise ConfigurationError(
            f"group {group!r} has no position on topic {topic!r}; check the name (a "
            "group gets its position when a consumer first subscribes with it)"
        )
    ids = {i: target for i in parts}
    if isinstance(to, int):
        ids = await _ids_before(redis, streams, parts, to)
    pipe = redis.pipeline(transaction=False)
    for i in parts:
        if has[i]:
            pipe.execute_command("XGROUP", "SETID", streams[i], group, ids[i])
        else:
            pipe.xgroup_create(streams[i], group, id=ids[i], mkstream=True)
    retry = []
    for i, reply in zip(parts, await pipe.execute(raise_on_error=False), strict=True):
        if isinstance(reply, Exception):
            if not is_busygroup(reply):  # a consumer created it meanwhile
                raise reply
            retry.append(i)
    for i in retry:
        await redis.execute_command("XGROUP", "SETID", streams[i], group, ids[i])


async def _ids_before(redis: Any, streams: list[str], parts: list[int], ms: int) -> dict[int, str]:
    """Per partition, the id of the last entry before ``ms`` (``"0"`` when none): the
    position from which the next read returns the first entry at or after ``ms``."""
    if ms <= 0:
        return {i: "0" for i in parts}
    pipe = redis.pipeline(transaction=False)
    for i in parts:
        pipe.xrevrange(streams[i], f"({ms}-0", "-", count=1)
    replies = await pipe.execute()
    return {i: as_text(r[0][0]) if r else "0" for i, r in zip(parts, replies, strict=True)}


def _target(to: object) -> str:
    if to == "earliest":
        return "0"
    if to == "latest":
        return "$"
    if isinstance(to, int) and not isinstance(to, bool) and to >= 0:
        return str(to)
    if isinstance(to, str) and _ENTRY_ID.fullmatch(to):
        return to
    raise ConfigurationError(
        f"cannot reset a group to {to!r}: use 'earliest', 'latest', an entry id such as "
        "'1700000000000-0', or a time as int epoch milliseconds"
    )
