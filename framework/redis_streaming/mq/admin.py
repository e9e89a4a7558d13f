"""Topic administration (DESIGN section 8): list, describe, create, grow, delete, inspect
pending entries, and move a group's position."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

from redis_streaming.errors import (
    ConfigurationError,
    PartitionOutOfRange,
    RedisUnavailable,
    TopicNotFound,
)
from redis_streaming.mq.keys import Keys, validate_name
from redis_streaming.mq.lua import LuaScript
from redis_streaming.mq.redis_errors import (
    is_busygroup,
    is_connection_error,
    is_nogroup,
    unavailable,
)
from redis_streaming.mq.topics import TopicMeta, TopicStore
from redis_streaming.options import MQOptions

__all__ = ["Admin", "GroupInfo", "PartitionInfo", "PendingEntry", "TopicInfo"]

_ALTER = LuaScript("alter_topic")
_COUNT_AFTER = LuaScript("count_after")
_ENTRY_ID = re.compile(r"\d+(-\d+)?")
_WALK = 5000  # entries walked per side in one count_after call: bounds each script's run time
_MAX_PARTITIONS = 4096


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id(value: Any) -> tuple[int, int]:
    ms, _, seq = _text(value).partition("-")
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


class Admin:
    """Administration of the topics of one namespace.

    Every method validates topic and group names (:class:`~redis_streaming.errors.InvalidName`)
    and raises :class:`~redis_streaming.errors.RedisUnavailable` when Redis cannot be reached.
    Reads use one pipelined round trip per phase, whatever the partition count.
    """

    def __init__(self, redis: Any, options: MQOptions | None = None) -> None:
        self.redis = redis
        self.options = options or MQOptions()
        self.keys = Keys(self.options.namespace)
        self.store = TopicStore(redis, self.options)

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        try:
            yield
        except RedisUnavailable:
            raise
        except Exception as exc:
            if is_connection_error(exc):
                raise unavailable(exc, self.redis, doing) from exc
            raise

    async def _meta(self, topic: str) -> TopicMeta:
        meta = await self.store.get(validate_name(topic))
        if meta is None:
            raise TopicNotFound(topic)
        return meta

    async def _groups(self, streams: list[str]) -> list[list[dict[str, Any]]]:
        """``XINFO GROUPS`` of each stream, one round trip; a missing stream has no groups."""
        pipe = self.redis.pipeline(transaction=False)
        for key in streams:
            pipe.exists(key)
            pipe.xinfo_groups(key)
        replies = await pipe.execute(raise_on_error=False)
        out: list[list[dict[str, Any]]] = []
        for exists, groups in zip(replies[::2], replies[1::2], strict=True):
            if isinstance(exists, Exception):
                raise exists
            if not exists:
                out.append([])
            elif isinstance(groups, Exception):
                raise groups
            else:
                out.append(groups)
        return out

    # -- topics ------------------------------------------------------------------------------

    async def list_topics(self) -> list[str]:
        """Names of all topics of the namespace (the ``rs:topics`` set), sorted."""
        with self._guard("listing topics"):
            return await self.store.names()

    async def describe_topic(self, topic: str) -> TopicInfo:
        """Partitions, groups, lag, pending, lease owners, DLQ length and retry backlog.

        Lag comes from ``XINFO GROUPS``; where Redis cannot tell it (``nil`` after ``XDEL``, or
        after ``XGROUP SETID`` into the middle of the stream) it is counted with a bounded,
        resumable Lua walk from both ends of the stream (``count_after.lua``).
        Raises :class:`~redis_streaming.errors.TopicNotFound` for an unknown topic.
        """
        with self._guard(f"describing topic {topic!r}"):
            meta = await self._meta(topic)
            n = meta.partitions
            streams = [self.keys.stream(topic, i) for i in range(n)]
            pipe = self.redis.pipeline(transaction=False)
            pipe.xlen(self.keys.dlq(topic))
            for key in streams:
                pipe.xlen(key)
                pipe.xrange(key, count=1)
                pipe.xrevrange(key, count=1)
            dlq_length, *ends = await pipe.execute()
            groups = await self._groups(streams)
            names = sorted({_text(g["name"]) for gs in groups for g in gs})
            pipe = self.redis.pipeline(transaction=False)
            for i in range(n):
                for name in names:
                    pipe.get(self.keys.lease(topic, i, name))
                    pipe.zcard(self.keys.retry(topic, i, name))
            leases = await pipe.execute()
            partitions: list[PartitionInfo] = []
            counting: list[tuple[int, int, str]] = []  # (partition, group index, position)
            for i in range(n):
                length, first, last = ends[3 * i : 3 * i + 3]
                first_id = _text(first[0][0]) if first else None
                last_id = _text(last[0][0]) if last else None
                infos: list[GroupInfo] = []
                for g in groups[i]:
                    name, position = _text(g["name"]), _text(g["last-delivered-id"])
                    lag = g.get("lag")
                    if lag is None:
                        lag = _known_lag(position, length, first_id, last_id)
                        if lag is None:
                            counting.append((i, len(infos), position))
                    j = 2 * (i * len(names) + names.index(name))
                    owner = None if leases[j] is None else _text(leases[j])
                    infos.append(
                        GroupInfo(
                            name, int(g["pending"]), min(max(int(lag or 0), 0), length),
                            int(g["consumers"]), owner, position, int(leases[j + 1]),
                        )
                    )  # fmt: skip
                partitions.append(PartitionInfo(i, length, first_id, last_id, infos))
            if counting:
                counts = await self._count_after([(streams[i], pos) for i, _, pos in counting])
                for (i, k, _), count in zip(counting, counts, strict=True):
                    part = partitions[i]
                    part.groups[k] = replace(part.groups[k], lag=min(count, part.length))
        return TopicInfo(
            topic, partitions, int(dlq_length),
            sum(g.retry_backlog for p in partitions for g in p.groups), meta.created_ms,
            meta.retention_max_len, meta.retention_max_age_ms,
        )  # fmt: skip

    async def _count_after(self, jobs: list[tuple[str, str]]) -> list[int]:
        """Entries after each ``(stream, id)``, all jobs pipelined per round of walking."""
        await _COUNT_AFTER.load(self.redis)
        state: list[list[Any]] = [["", 0, "", 0] for _ in jobs]
        result: list[int | None] = [None] * len(jobs)
        while any(r is None for r in result):
            todo = [k for k, r in enumerate(result) if r is None]
            pipe = self.redis.pipeline(transaction=False)
            for k in todo:
                key, position = jobs[k]
                pipe.evalsha(_COUNT_AFTER.sha, 1, key, position, _WALK, *state[k])
            for k, reply in zip(todo, await pipe.execute(), strict=True):
                if int(reply[0]):
                    result[k] = int(reply[1])
                else:
                    state[k] = [_text(reply[1]), int(reply[2]), _text(reply[3]), int(reply[4])]
        return [int(r or 0) for r in result]

    async def create_topic(
        self,
        topic: str,
        partitions: int,
        *,
        retention_max_len: int = 0,
        retention_max_age_ms: int = 0,
    ) -> TopicMeta:
        """Create a topic with ``partitions`` partitions and its retention (0 = unlimited).

        Idempotent: creating an existing topic with identical settings returns its metadata.
        A different partition count or retention raises
        :class:`~redis_streaming.errors.ConfigurationError` saying how to change it.
        """
        with self._guard(f"creating topic {topic!r}"):
            created, meta = await self.store.create(
                topic,
                partitions,
                retention_max_len=retention_max_len,
                retention_max_age_ms=retention_max_age_ms,
            )
        if created:
            return meta
        if meta.partitions != partitions:
            fix = (
                f"grow it with Admin.add_partitions({topic!r}, {partitions})"
                if partitions > meta.partitions
                else "partitions can only grow; delete the topic and create it again (its "
                "messages are lost) or use a new topic name"
            )
            raise ConfigurationError(
                f"topic {topic!r} already exists with {meta.partitions} partitions, not "
                f"{partitions}; {fix}"
            )
        if (meta.retention_max_len, meta.retention_max_age_ms) != (
            retention_max_len,
            retention_max_age_ms,
        ):
            raise ConfigurationError(
                f"topic {topic!r} already exists with retention_max_len="
                f"{meta.retention_max_len} and retention_max_age_ms={meta.retention_max_age_ms}; "
                "change them with Admin.set_retention"
            )
        return meta

    async def _alter(self, topic: str, args: list[Any]) -> tuple[int, int, TopicMeta]:
        reply = await _ALTER(self.redis, [self.keys.topic(topic)], args)
        if int(reply[0]) < 0:
            raise TopicNotFound(topic)
        p, created, max_len, max_age = (int(_text(v)) for v in reply[2:6])
        return int(reply[0]), int(reply[1]), TopicMeta(topic, p, created, max_len, max_age)

    async def add_partitions(self, topic: str, count: int) -> TopicMeta:
        """Grow ``topic`` to ``count`` partitions in total (atomic; partitions never shrink).

        Groups that exist on the topic get a position at the start of every new partition, so
        they see all of its messages whatever their ``start``. Producers use the new partitions
        within ``mq.topic_refresh_s``, consumers from their next rebalance. Keyed messages move
        to new partitions (``crc32(key) % count``): order per key holds only from then on.
        Raises :class:`~redis_streaming.errors.ConfigurationError` unless ``count`` is more
        than the current count (and at most 4096).
        """
        validate_name(topic)
        if not isinstance(count, int) or not 1 <= count <= _MAX_PARTITIONS:
            raise ConfigurationError(
                f"topic {topic!r}: partitions must be between 1 and {_MAX_PARTITIONS}, "
                f"got {count!r}"
            )
        with self._guard(f"adding partitions to topic {topic!r}"):
            status, before, meta = await self._alter(topic, [count, "", ""])
            if status == 0:
                raise ConfigurationError(
                    f"topic {topic!r} already has {before} partitions; partitions can only grow, "
                    f"so pass a count above {before} (got {count})"
                )
            old = [self.keys.stream(topic, i) for i in range(before)]
            names = sorted({_text(g["name"]) for gs in await self._groups(old) for g in gs})
            pipe = self.redis.pipeline(transaction=False)
            for i in range(before, meta.partitions):
                for name in names:
                    pipe.xgroup_create(self.keys.stream(topic, i), name, id="0", mkstream=True)
            for reply in await pipe.execute(raise_on_error=False):
                if isinstance(reply, Exception) and not is_busygroup(reply):
                    raise reply
        return meta

    async def set_retention(
        self, topic: str, *, max_len: int | None = None, max_age_ms: int | None = None
    ) -> TopicMeta:
        """Set the topic's retention (``None`` leaves a value as it is, 0 means unlimited).

        ``max_len`` applies on write (producers' approximate ``MAXLEN``, within
        ``mq.topic_refresh_s``) and in the housekeeper; ``max_age_ms`` in the housekeeper.
        """
        for value in (max_len, max_age_ms):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ConfigurationError(f"retention limits must be ints >= 0, got {value!r}")
        args = [0, "" if max_len is None else max_len, "" if max_age_ms is None else max_age_ms]
        with self._guard(f"setting the retention of topic {topic!r}"):
            return (await self._alter(validate_name(topic), args))[2]

    async def delete_topic(self, topic: str) -> int:
        """Delete every key of ``topic`` and remove it from the topic set; returns the number
        of keys deleted (0 for an unknown topic).

        Deletes partition streams, redelivery streams, retry and delayed sets, leases, members,
        the DLQ and the metadata, found with ``SCAN`` and checked against the key layout, so no
        key of another topic (``orders`` vs ``orders.v2``) or feature is touched. Stop the
        topic's consumers and producers first: they recreate what they use.
        """
        validate_name(topic)
        with self._guard(f"deleting topic {topic!r}"):
            meta = await self.store.get(topic)
            await self.redis.srem(self.keys.topics, topic)
            found = {self.keys.dlq(topic)}
            for i in range(meta.partitions if meta else 0):
                found |= {self.keys.stream(topic, i), self.keys.delayed(topic, i)}
            match = self.keys.topic_scan_match(topic)
            async for raw in self.redis.scan_iter(match=match, count=1000):
                if self.keys.is_topic_key(topic, _text(raw)):
                    found.add(_text(raw))
            found.discard(self.keys.topic(topic))
            ordered = [*sorted(found), self.keys.topic(topic)]  # metadata last
            deleted = 0
            for start in range(0, len(ordered), 500):
                pipe = self.redis.pipeline(transaction=False)
                for key in ordered[start : start + 500]:
                    pipe.unlink(key)  # one key per command: keys are in different cluster slots
                deleted += sum(int(n) for n in await pipe.execute())
        return deleted

    # -- groups ------------------------------------------------------------------------------

    def _partitions(self, meta: TopicMeta, partition: int | None) -> list[int]:
        if partition is None:
            return list(range(meta.partitions))
        if not isinstance(partition, int) or not 0 <= partition < meta.partitions:
            raise PartitionOutOfRange(meta.name, partition, meta.partitions)
        return [partition]

    async def pending(
        self, topic: str, group: str, partition: int | None = None, *, count: int = 100
    ) -> list[PendingEntry]:
        """Entries delivered to ``group`` and not acknowledged, on the partition streams and the
        group's redelivery streams (all partitions, or one), ordered by partition, stream
        (main first) and id; at most ``count`` entries."""
        validate_name(group, "group")
        if count < 1:
            raise ConfigurationError(f"count must be >= 1, got {count}")
        with self._guard(f"reading pending entries of group {group!r} on topic {topic!r}"):
            meta = await self._meta(topic)
            parts = self._partitions(meta, partition)
            pipe = self.redis.pipeline(transaction=False)
            for i in parts:
                for key in (self.keys.stream(topic, i), self.keys.redeliver(topic, i, group)):
                    pipe.xpending_range(key, group, "-", "+", count)
            replies = iter(await pipe.execute(raise_on_error=False))
        out: list[PendingEntry] = []
        for i in parts:
            for kind in ("main", "redeliver"):
                reply = next(replies)
                if isinstance(reply, Exception):
                    if is_nogroup(reply):
                        continue
                    raise reply
                out += [
                    PendingEntry(
                        i, _text(p["message_id"]), _text(p["consumer"]),
                        int(p["time_since_delivered"]), int(p["times_delivered"]),
                        "main" if kind == "main" else "redeliver",
                    )
                    for p in reply
                ]  # fmt: skip
        return out[:count]

    async def reset_group(
        self,
        topic: str,
        group: str,
        to: Literal["earliest", "latest"] | str | int,
        partition: int | None = None,
    ) -> list[int]:
        """Move ``group``'s position on the topic's partition streams (all, or one); returns the
        partitions moved. The pending list, retries and redelivery streams are kept as they are.

        ``to``: ``"earliest"`` (re-read everything still retained), ``"latest"`` (skip to the
        end), an entry id (``"1700000000000-0"``; the next read returns entries after it), or an
        int of epoch ms (the next read starts with the first entry at or after that time).
        Running consumers continue from the new position. Partitions where the group has no
        position yet get one; a group with no position on the whole topic raises
        :class:`~redis_streaming.errors.ConfigurationError` (a typo would otherwise create a
        group that nobody reads and that holds retention back forever).
        """
        validate_name(group, "group")
        target = _target(to)
        with self._guard(f"resetting group {group!r} on topic {topic!r}"):
            meta = await self._meta(topic)
            parts = self._partitions(meta, partition)
            streams = [self.keys.stream(topic, i) for i in range(meta.partitions)]
            groups = await self._groups(streams)
            has = [any(_text(g["name"]) == group for g in gs) for gs in groups]
            if not any(has):
                raise ConfigurationError(
                    f"group {group!r} has no position on topic {topic!r}; check the name (a "
                    "group gets its position when a consumer first subscribes with it)"
                )
            ids = {i: target for i in parts}
            if isinstance(to, int):
                ids = await self._ids_before(streams, parts, to)
            pipe = self.redis.pipeline(transaction=False)
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
                await self.redis.execute_command("XGROUP", "SETID", streams[i], group, ids[i])
        return parts

    async def _ids_before(self, streams: list[str], parts: list[int], ms: int) -> dict[int, str]:
        """Per partition, the id of the last entry before ``ms`` (``"0"`` when none): the
        position from which the next read returns the first entry at or after ``ms``."""
        if ms <= 0:
            return {i: "0" for i in parts}
        pipe = self.redis.pipeline(transaction=False)
        for i in parts:
            pipe.xrevrange(streams[i], f"({ms}-0", "-", count=1)
        replies = await pipe.execute()
        return {i: _text(r[0][0]) if r else "0" for i, r in zip(parts, replies, strict=True)}


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


def _known_lag(position: str, length: int, first: str | None, last: str | None) -> int | None:
    """The lag when the ends of the stream decide it, else ``None`` (it must be counted)."""
    if length == 0 or last is None or first is None or _id(position) >= _id(last):
        return 0
    if _id(position) < _id(first):
        return length
    return None
