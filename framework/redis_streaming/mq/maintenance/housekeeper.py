"""The housekeeper: retention of partition, redelivery and dead-letter streams (docs/design.md,
"Housekeeper")."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from redis_streaming._redis.background import BackgroundLoop
from redis_streaming._redis.backoff import Backoff
from redis_streaming._redis.errors import guarded
from redis_streaming._redis.names import NAME
from redis_streaming._redis.replies import as_text
from redis_streaming.errors import ConfigurationError
from redis_streaming.mq.keys import Keys, validate_name
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.scripts import script
from redis_streaming.mq.topics import TopicMeta, TopicStore

__all__ = ["Housekeeper"]

log = logging.getLogger(__name__)
_TRIM = script("trim_stream")
_BOUND = 10_000  # entries one trim call walks or removes at most (approximate mode)
_BUSY_PAUSE_S = 0.1  # pause between passes while a backlog is being worked off


class Housekeeper(BackgroundLoop):
    """Applies retention every ``interval_s`` seconds, never trimming what a group still needs.

    Per partition stream of a topic: ``retention_max_age_ms`` (entries older than that, on the
    Redis server's clock) and ``retention_max_len`` from the topic's metadata. Neither trims at
    or past the stream's floor: the smallest pending id and the smallest last-delivered id over
    all groups of the stream, so entries a group has not read, or read and not acknowledged,
    are always kept. A stream on which a group known elsewhere on the topic has no position yet
    is not trimmed (that group will read it from the start). A stream with no groups at all has
    no floor: retention alone applies. Redelivery streams ``rs:redeliver:{T:i}:G`` are trimmed
    up to their group's floor whatever the retention (only that group reads them). DLQ streams
    follow ``mq.dlq.max_len`` and ``mq.dlq.max_age_ms`` (they have no groups).

    Each stream is trimmed by one Lua call that reads the groups and trims atomically.
    ``approximate`` (default) trims whole stream nodes only (``XTRIM ~``, cheap, keeps up to a
    node's worth of entries more) and at most 10,000 entries per stream and pass; a stream with
    more to trim gets another pass right away. Redis errors in the background loop are logged
    and retried with capped exponential backoff; the loop never dies of them.
    """

    def __init__(
        self,
        redis: Any,
        options: MQOptions | None = None,
        topics: Iterable[str] | None = None,
        *,
        interval_s: float = 60.0,
        approximate: bool = True,
    ) -> None:
        super().__init__()
        if not interval_s > 0:
            raise ConfigurationError(f"housekeeper interval_s must be > 0, got {interval_s!r}")
        self.redis = redis
        self.options = options or MQOptions()
        self.keys = Keys(self.options.namespace)
        self.store = TopicStore(redis, self.options)
        self.topics = None if topics is None else [validate_name(t) for t in topics]
        self.interval_s = interval_s
        self.approximate = approximate
        self.trimmed = 0
        self.passes = 0
        self._busy = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background loop (idempotent); its first pass runs at once."""
        self._launch("redis-streaming-housekeeper")

    async def _run(self) -> None:
        async def step() -> float:
            await self.run_once()
            return _BUSY_PAUSE_S if self._busy else self.interval_s

        await self._repeat("housekeeper", step, Backoff(max_s=min(5.0, self.interval_s)), log)

    # -- one pass ----------------------------------------------------------------------------

    async def run_once(self) -> dict[str, int]:
        """One pass over the topics now; returns the entries trimmed per topic (its partition,
        redelivery and dead-letter streams together; topics with nothing trimmed included,
        topics that do not exist left out).

        Raises :class:`~redis_streaming.errors.RedisUnavailable` when Redis cannot be reached.
        """
        return await guarded(self.redis, self._pass(), "applying retention")

    async def _pass(self) -> dict[str, int]:
        metas = await self._metas()
        groups = await self._group_names(metas)
        calls: list[tuple[str, str, list[Any]]] = []  # (topic, stream key, ARGV)
        mode = "~" if self.approximate else "="
        dlq = self.options.dlq
        for meta, names in zip(metas, groups, strict=True):
            t = meta.name
            for i in range(meta.partitions):
                if meta.retention_max_len or meta.retention_max_age_ms:
                    args = [meta.retention_max_age_ms, meta.retention_max_len, 0, mode, _BOUND]
                    calls.append((t, self.keys.stream(t, i), [*args, *names]))
                for g in names:
                    args = [0, 0, 1, mode, _BOUND, g]
                    calls.append((t, self.keys.redeliver(t, i, g), args))
            if dlq.max_len or dlq.max_age_ms:
                args = [dlq.max_age_ms, dlq.max_len, 0, mode, _BOUND]
                calls.append((t, self.keys.dlq(t), args))
        replies = await _TRIM.run_pipelined(self.redis, [([key], args) for _, key, args in calls])
        result = {meta.name: 0 for meta in metas}
        self._busy = False
        for (topic, _, _), reply in zip(calls, replies, strict=True):
            result[topic] += int(reply[0])
            self._busy = self._busy or bool(int(reply[1]))
        self.trimmed += sum(result.values())
        self.passes += 1
        return result

    async def _metas(self) -> list[TopicMeta]:
        if self.topics is not None:
            names = self.topics
        else:  # names that are not valid (written by something else) cannot be ours: skipped
            members = await self.redis.smembers(self.keys.topics)
            names = sorted(n for n in map(as_text, members) if NAME.fullmatch(n))
        return await self.store.get_many(names)  # a topic deleted meanwhile is left out

    async def _group_names(self, metas: list[TopicMeta]) -> list[list[str]]:
        """The groups known on each topic: every group with a position on any partition."""
        pipe = self.redis.pipeline(transaction=False)
        for meta in metas:
            for i in range(meta.partitions):
                key = self.keys.stream(meta.name, i)
                pipe.exists(key)
                pipe.xinfo_groups(key)
        replies = iter(await pipe.execute(raise_on_error=False))
        out = []
        for meta in metas:
            names: set[str] = set()
            for _ in range(meta.partitions):
                exists, groups = next(replies), next(replies)
                if isinstance(exists, Exception):
                    raise exists
                if exists and isinstance(groups, Exception):
                    raise groups
                if exists:
                    names |= {g["name"].decode() for g in groups}
            out.append(sorted(names))
        return out
