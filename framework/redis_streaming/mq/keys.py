"""The Redis key layout (docs/design.md, "Key layout"). No other module formats key strings.

Every key of one partition carries the hash tag ``{T:i}``, so a partition's stream, retry set,
redelivery stream, delayed set and lease live in one Redis Cluster slot and Lua scripts over them
are cluster-safe; topic-wide keys carry ``{T}``.
"""

from __future__ import annotations

import re

from redis_streaming._redis.names import NAME_PATTERN, validate_name

__all__ = ["NAME_PATTERN", "Keys", "validate_name"]  # the name rule, re-exported beside the keys


class Keys:
    """Builds every key of one namespace. Names must already be validated."""

    __slots__ = ("namespace",)

    def __init__(self, namespace: str = "rs") -> None:
        self.namespace = validate_name(namespace, "namespace")

    @property
    def topics(self) -> str:
        """SET of all topic names."""
        return f"{self.namespace}:topics"

    def topic(self, topic: str) -> str:
        """HASH of topic metadata (partitions, created_ms, retention)."""
        return f"{self.namespace}:topic:{{{topic}}}"

    def stream(self, topic: str, partition: int) -> str:
        """STREAM of one partition, shared by all groups."""
        return f"{self.namespace}:stream:{{{topic}:{partition}}}"

    def delayed(self, topic: str, partition: int) -> str:
        """ZSET of producer-delayed messages of one partition (score = due ms)."""
        return f"{self.namespace}:delayed:{{{topic}:{partition}}}"

    def retry(self, topic: str, partition: int, group: str) -> str:
        """ZSET of group ``group``'s delayed retries on one partition (score = due ms)."""
        return f"{self.namespace}:retry:{{{topic}:{partition}}}:{group}"

    def redeliver(self, topic: str, partition: int, group: str) -> str:
        """STREAM of due retries and replays of one partition, read by ``group`` only."""
        return f"{self.namespace}:redeliver:{{{topic}:{partition}}}:{group}"

    def lease(self, topic: str, partition: int, group: str) -> str:
        """STRING lease on one partition for ``group``; value = owning consumer id."""
        return f"{self.namespace}:lease:{{{topic}:{partition}}}:{group}"

    def members(self, topic: str, group: str) -> str:
        """ZSET of live consumers of ``group`` on ``topic`` (score = membership expiry ms)."""
        return f"{self.namespace}:members:{{{topic}}}:{group}"

    def dlq(self, topic: str) -> str:
        """STREAM of the topic's dead letters (all groups; each entry names its group)."""
        return f"{self.namespace}:dlq:{{{topic}}}"

    def reply(self, inbox: str) -> str:
        """STREAM of the replies to one producer's requests (``inbox`` = its id); it expires
        unless the producer refreshes it, so it disappears with the process."""
        return f"{self.namespace}:reply:{{{inbox}}}"

    def topic_scan_match(self, topic: str) -> str:
        """One SCAN ``MATCH`` glob covering every key of ``topic``: the tag ``{T}`` or ``{T:i}``.

        It may also match keys of other features that put the same name in braces (the service
        registry's ``rs:svc:{name}:...``); keep only the keys :meth:`is_topic_key` accepts.
        """
        return f"{self.namespace}:*{{{topic}[:}}]*"

    def is_topic_key(self, topic: str, key: str) -> bool:
        """True when ``key`` is one of the keys this class builds for ``topic`` (any partition,
        any group): topic meta, DLQ, members, partition streams, delayed, retry, redelivery and
        lease keys. Nothing else, in particular no key of another topic or feature."""
        ns, t = re.escape(self.namespace), re.escape(topic)
        name = NAME_PATTERN
        pattern = (
            rf"{ns}:(?:(?:topic|dlq):\{{{t}\}}|members:\{{{t}\}}:{name}"
            rf"|(?:stream|delayed):\{{{t}:\d+\}}|(?:retry|redeliver|lease):\{{{t}:\d+\}}:{name})"
        )
        return re.fullmatch(pattern, key) is not None
