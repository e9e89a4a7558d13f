"""Appends a batch of source records to their topics' partitions, each record at most once.

Records are grouped by target partition, keeping their order; each group is one call of
``source_append.lua`` in that partition's slot, which skips records at or below the partition's
high-water mark for the source and moves it. The calls go out in one pipeline. Records that
cannot be encoded go to the topic's dead letters first (at least once: a crash before the
position is stored writes them again).
"""

from __future__ import annotations

import time
from typing import Any

from redis_streaming.errors import InvalidArgument
from redis_streaming.mq.keys import validate_name
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.producer import partition_for_key
from redis_streaming.mq.retry.dead_letter import DeadLetterWriter
from redis_streaming.mq.topics import TopicMeta, TopicStore
from redis_streaming.mq.wire.codec import encode_headers, encode_payload, entry_args
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.source.base import SourceRecord
from redis_streaming.source.scripts import script

__all__ = ["POSITION_HEADER", "Appender"]

_APPEND = script("source_append")
POSITION_HEADER = "source_position"  # header of every appended entry: the record's position


class Appender:
    """Writes the records of source ``name`` into topics (default ``topic``)."""

    def __init__(self, redis: Any, options: MQOptions, topic: str | None, name: str) -> None:
        self.redis = redis
        self.options = options
        self.keys = RuntimeKeys(options.namespace)
        self.topics = TopicStore(redis, options)
        self.dead_letters = DeadLetterWriter(redis, options)
        self.topic = topic
        self.name = name
        self._metas: dict[str, tuple[float, TopicMeta]] = {}
        self.dead_lettered = 0

    async def _meta(self, topic: str) -> TopicMeta:
        cached = self._metas.get(topic)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        meta = await self.topics.require(validate_name(topic))
        self._metas[topic] = (now + self.options.topic_refresh_s, meta)
        return meta

    def _fields(self, record: SourceRecord, ts_ms: int) -> list[Any]:
        """The entry's wire fields; raises InvalidArgument when the value cannot be sent."""
        raw, content_type = encode_payload(record.value)
        if len(raw) > self.options.max_payload_bytes:
            raise InvalidArgument(
                f"payload of {len(raw)} bytes is over mq.max_payload_bytes "
                f"({self.options.max_payload_bytes})"
            )
        headers = {**(record.headers or {}), POSITION_HEADER: record.position}
        return entry_args(raw, content_type, record.key, encode_headers(headers), ts_ms)

    async def append(self, records: list[SourceRecord]) -> int:
        """Append ``records`` (in position order); returns how many were new to their topics."""
        ts_ms = time.time_ns() // 10**6
        calls: dict[tuple[str, int], list[Any]] = {}
        maxlens: dict[str, int] = {}
        for record in records:
            topic = record.topic or self.topic
            if topic is None:
                raise InvalidArgument(f"source {self.name!r}: a record names no topic")
            meta = await self._meta(topic)
            maxlens[topic] = meta.retention_max_len
            error = record.error
            fields: list[Any] = []
            if error is None:
                try:
                    fields = self._fields(record, ts_ms)
                except InvalidArgument as exc:
                    error = str(exc)
            if error is not None:
                await self._dead_letter(topic, record, error, ts_ms)
                continue
            if record.broadcast:
                partitions: range | tuple[int] = range(meta.partitions)
            elif record.key is not None:
                partitions = (partition_for_key(record.key, meta.partitions),)
            else:
                partitions = (0,)  # no key: partition 0, so the order stays total
            for p in partitions:
                calls.setdefault((topic, p), []).extend((record.position, len(fields), *fields))
        if not calls:
            return 0
        scripted = [
            (
                [self.keys.mq.stream(t, p), self.keys.source_mark(t, p, self.name)],
                [maxlens[t], *args],
            )
            for (t, p), args in calls.items()
        ]
        return sum(int(n) for n in await _APPEND.run_pipelined(self.redis, scripted))

    async def _dead_letter(self, topic: str, record: SourceRecord, error: str, ts: int) -> None:
        try:
            raw, content_type = encode_payload(record.value)
        except InvalidArgument:
            raw, content_type = repr(record.value).encode(), "text/plain"
        fields = {b"payload": raw, b"content_type": content_type.encode(), b"ts": str(ts).encode()}
        if record.key is not None:
            fields[b"key"] = record.key.encode()
        await self.dead_letters.write(
            topic=topic,
            partition=-1,
            group=f"source.{self.name}",
            consumer=self.name,
            source_key="",
            entry_id=record.position,
            fields=fields,
            reason="undecodable",
            attempts=1,
            error=error,
            ack=False,
        )
        self.dead_lettered += 1
