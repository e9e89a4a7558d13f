"""Topic administration (docs/design.md, "Admin and retention"): list, describe, create,
grow, delete, inspect pending entries, move a group's position, and read entries without a
group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from redis_streaming._redis.errors import as_unavailable, is_busygroup
from redis_streaming._redis.replies import as_text
from redis_streaming.errors import ConfigurationError, TopicNotFound
from redis_streaming.mq.admin._browse import browse, check_positions
from redis_streaming.mq.admin._describe import (
    GroupInfo,
    PartitionInfo,
    PendingEntry,
    TopicInfo,
    describe,
    stream_groups,
)
from redis_streaming.mq.admin._groups import (
    _target,
    partitions_of,
    pending_entries,
    pending_replies,
    reset_positions,
)
from redis_streaming.mq.keys import Keys, validate_name
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.scripts import script
from redis_streaming.mq.topics import TopicMeta, TopicStore
from redis_streaming.mq.wire.message import Message

__all__ = ["Admin", "GroupInfo", "PartitionInfo", "PendingEntry", "TopicInfo"]

_ALTER = script("alter_topic")
_WALK = 5000  # entries walked per side in one count_after call: bounds each script's run time
_MAX_PARTITIONS = 4096


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

    async def _meta(self, topic: str) -> TopicMeta:
        meta = await self.store.get(validate_name(topic))
        if meta is None:
            raise TopicNotFound(topic, auto_create_off=False)
        return meta

    # -- topics ------------------------------------------------------------------------------

    async def list_topics(self) -> list[str]:
        """Names of all topics of the namespace (the ``rs:topics`` set), sorted."""
        with as_unavailable(self.redis, "listing topics"):
            return await self.store.names()

    async def describe_topic(self, topic: str) -> TopicInfo:
        """Partitions, groups, lag, pending, lease owners, DLQ length and retry backlog.

        Lag comes from ``XINFO GROUPS``; where Redis cannot tell it (``nil`` after ``XDEL``, or
        after ``XGROUP SETID`` into the middle of the stream) it is counted with a bounded,
        resumable Lua walk from both ends of the stream (``count_after.lua``).
        Raises :class:`~redis_streaming.errors.TopicNotFound` for an unknown topic.
        """
        with as_unavailable(self.redis, f"describing topic {topic!r}"):
            meta = await self._meta(topic)
            return await describe(self.redis, self.keys, topic, meta, _WALK)

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
        with as_unavailable(self.redis, f"creating topic {topic!r}"):
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
            raise TopicNotFound(topic, auto_create_off=False)
        p, created, max_len, max_age = (int(as_text(v)) for v in reply[2:6])
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
        with as_unavailable(self.redis, f"adding partitions to topic {topic!r}"):
            status, before, meta = await self._alter(topic, [count, "", ""])
            if status == 0:
                raise ConfigurationError(
                    f"topic {topic!r} already has {before} partitions; partitions can only grow, "
                    f"so pass a count above {before} (got {count})"
                )
            old = [self.keys.stream(topic, i) for i in range(before)]
            groups = await stream_groups(self.redis, old)
            names = sorted({as_text(g["name"]) for gs in groups for g in gs})
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
        with as_unavailable(self.redis, f"setting the retention of topic {topic!r}"):
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
        with as_unavailable(self.redis, f"deleting topic {topic!r}"):
            meta = await self.store.get(topic)
            await self.redis.srem(self.keys.topics, topic)
            found = {self.keys.dlq(topic)}
            for i in range(meta.partitions if meta else 0):
                found |= {self.keys.stream(topic, i), self.keys.delayed(topic, i)}
            match = self.keys.topic_scan_match(topic)
            async for raw in self.redis.scan_iter(match=match, count=1000):
                if self.keys.is_topic_key(topic, as_text(raw)):
                    found.add(as_text(raw))
            found.discard(self.keys.topic(topic))
            ordered = sorted(found)
            deleted = 0
            for start in range(0, len(ordered), 500):
                pipe = self.redis.pipeline(transaction=False)
                for key in ordered[start : start + 500]:
                    # One key per command: the keys are in different cluster slots. A raw
                    # command, as redis-py's cluster pipeline makes `unlink` a coroutine.
                    pipe.execute_command("UNLINK", key)
                deleted += sum(int(n) for n in await pipe.execute())
            # The metadata goes last, in its own round trip (a cluster pipeline runs its nodes'
            # commands concurrently): a delete cut short can be repeated and still knows the
            # partition count.
            deleted += int(await self.redis.unlink(self.keys.topic(topic)))
        return deleted

    # -- groups ------------------------------------------------------------------------------

    async def pending(
        self, topic: str, group: str, partition: int | None = None, *, count: int = 100
    ) -> list[PendingEntry]:
        """Entries delivered to ``group`` and not acknowledged, on the partition streams and the
        group's redelivery streams (all partitions, or one), ordered by partition, stream
        (main first) and id; at most ``count`` entries."""
        validate_name(group, "group")
        if count < 1:
            raise ConfigurationError(f"count must be >= 1, got {count}")
        with as_unavailable(
            self.redis, f"reading pending entries of group {group!r} on topic {topic!r}"
        ):
            meta = await self._meta(topic)
            parts = partitions_of(meta, partition)
            replies = await pending_replies(self.redis, self.keys, topic, group, parts, count)
        return pending_entries(parts, replies, count)

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
        with as_unavailable(self.redis, f"resetting group {group!r} on topic {topic!r}"):
            meta = await self._meta(topic)
            parts = partitions_of(meta, partition)
            await reset_positions(self.redis, self.keys, meta, topic, group, to, target, parts)
        return parts

    # -- reading -----------------------------------------------------------------------------

    async def browse(
        self, topic: str, after: Mapping[int, str], *, count: int = 100, block_ms: int = 0
    ) -> list[Message]:
        """Entries of the partitions in ``after`` that come after the given entry ids, read
        without a consumer group: nothing is delivered, acknowledged or created (``XRANGE``,
        and ``XREAD`` to wait; never ``XREADGROUP``).

        ``after`` maps partitions to the id of the last entry already seen (``"0-0"``: from
        the start). At most ``count`` entries per partition, in id order across partitions
        (ties by partition); pass each partition's last returned id in the next call to go
        on, in id order still. With ``block_ms`` > 0 and no entry there, waits up to that long
        for new ones (keep it below the client's socket timeout; a Redis Cluster client polls
        every 100 ms instead, as ``XREAD`` cannot span partitions there). Messages have
        ``group=None`` and the ``attempt`` written in the entry; an entry that a consumer could
        not decode comes with its raw payload bytes as ``application/octet-stream``. Raises
        :class:`~redis_streaming.errors.TopicNotFound` for an unknown topic and
        :class:`~redis_streaming.errors.PartitionOutOfRange` for a partition it does not have.
        """
        if not isinstance(count, int) or count < 1:
            raise ConfigurationError(f"count must be an int >= 1, got {count!r}")
        if not isinstance(block_ms, int) or block_ms < 0:
            raise ConfigurationError(f"block_ms must be an int >= 0, got {block_ms!r}")
        with as_unavailable(self.redis, f"reading topic {topic!r}"):
            meta = await self._meta(topic)
            check_positions(meta, after)
            if not after:
                return []
            return await browse(self.redis, self.keys, topic, after, count, block_ms)
