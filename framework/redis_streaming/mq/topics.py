"""Topic metadata: the ``rs:topics`` set and one ``rs:topic:{T}`` hash per topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis_streaming._redis.replies import as_int
from redis_streaming.errors import ConfigurationError, TopicNotFound
from redis_streaming.mq.keys import Keys, validate_name
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.scripts import script

__all__ = ["TopicMeta", "TopicStore"]

_CREATE = script("create_topic")


@dataclass(slots=True, frozen=True)
class TopicMeta:
    """A topic's metadata. Retention values of 0 mean unlimited."""

    name: str
    partitions: int
    created_ms: int
    retention_max_len: int = 0
    retention_max_age_ms: int = 0


def _meta(topic: str, raw: dict[bytes, bytes]) -> TopicMeta | None:
    if not raw:
        return None
    return TopicMeta(
        name=topic,
        partitions=max(1, as_int(raw.get(b"partitions"), 1)),
        created_ms=as_int(raw.get(b"created_ms")),
        retention_max_len=as_int(raw.get(b"retention_max_len")),
        retention_max_age_ms=as_int(raw.get(b"retention_max_age_ms")),
    )


class TopicStore:
    """Reads and creates topic metadata. Creation is idempotent and first-writer-wins."""

    def __init__(self, redis: Any, options: MQOptions | None = None) -> None:
        self.redis = redis
        self.options = options or MQOptions()
        self.keys = Keys(self.options.namespace)

    async def get(self, topic: str) -> TopicMeta | None:
        """The topic's metadata, or ``None`` when it does not exist."""
        validate_name(topic)
        return _meta(topic, await self.redis.hgetall(self.keys.topic(topic)))

    async def get_many(self, topics: list[str]) -> list[TopicMeta]:
        """The metadata of those of ``topics`` that exist, read in one round trip."""
        if not topics:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for topic in topics:
            pipe.hgetall(self.keys.topic(validate_name(topic)))
        metas = [_meta(t, raw) for t, raw in zip(topics, await pipe.execute(), strict=True)]
        return [m for m in metas if m is not None]

    async def create(
        self,
        topic: str,
        partitions: int,
        *,
        retention_max_len: int = 0,
        retention_max_age_ms: int = 0,
    ) -> tuple[bool, TopicMeta]:
        """Create the topic unless it exists; returns ``(created, metadata as it now is)``."""
        validate_name(topic)
        if not 1 <= partitions <= 4096:
            raise ConfigurationError(
                f"topic {topic!r}: partitions must be between 1 and 4096, got {partitions}"
            )
        if retention_max_len < 0 or retention_max_age_ms < 0:
            raise ConfigurationError(
                f"topic {topic!r}: retention limits must be >= 0 (0 means unlimited)"
            )
        reply = await _CREATE(
            self.redis,
            [self.keys.topic(topic)],
            [partitions, retention_max_len, retention_max_age_ms],
        )
        # The meta hash is the source of truth; the set is an index (a different cluster slot),
        # added after the hash so a topic in the set always has metadata.
        await self.redis.sadd(self.keys.topics, topic)
        meta = TopicMeta(
            name=topic,
            partitions=max(1, as_int(reply[1], 1)),
            created_ms=as_int(reply[2]),
            retention_max_len=as_int(reply[3]),
            retention_max_age_ms=as_int(reply[4]),
        )
        return bool(reply[0]), meta

    async def require(self, topic: str) -> TopicMeta:
        """The topic's metadata; creates it with the defaults when ``auto_create_topics`` is on.

        Raises :class:`TopicNotFound` when it does not exist and auto-creation is off.
        """
        meta = await self.get(topic)
        if meta is not None:
            return meta
        if not self.options.auto_create_topics:
            raise TopicNotFound(topic)
        _, meta = await self.create(
            topic,
            self.options.default_partitions,
            retention_max_len=self.options.default_retention_max_len,
        )
        return meta

    async def names(self) -> list[str]:
        """All topic names, sorted."""
        members = await self.redis.smembers(self.keys.topics)
        return sorted(m.decode() for m in members)
