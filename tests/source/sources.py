"""A source over a list in memory (a real implementation of the protocol, for runner tests)."""

from __future__ import annotations

from typing import Any

from redis_streaming.errors import SourceError
from redis_streaming.source import SourceBatch, SourceRecord
from redis_streaming.source.positions import decimal


def numbered(n: int, keys: int = 5, start: int = 0) -> list[SourceRecord]:
    """Records ``start .. start + n - 1``: position decimal(i), key k<i % keys>, value {"i": i}."""
    return [SourceRecord(decimal(i), {"i": i}, f"k{i % keys}") for i in range(start, start + n)]


class ListSource:
    """Serves ``records``; ``fail_reads`` reads raise RuntimeError (passing), ``fatal`` raises
    SourceError; records every open, ack and close."""

    def __init__(self, records: list[SourceRecord], *, fail_reads: int = 0) -> None:
        self.records = records
        self.fail_reads = fail_reads
        self.fatal: str | None = None
        self.opened: list[tuple[str | None, str | None]] = []
        self.acks: list[str] = []
        self.closed = 0
        self.meta_value: str | None = None

    @property
    def meta(self) -> str | None:
        return self.meta_value

    async def open(self, position: str | None, meta: str | None) -> None:
        self.opened.append((position, meta))

    async def read(self, after: str | None, limit: int) -> SourceBatch:
        if self.fatal:
            raise SourceError(self.fatal)
        if self.fail_reads:
            self.fail_reads -= 1
            raise RuntimeError("the database went away")
        out = [r for r in self.records if after is None or r.position > after][:limit]
        return SourceBatch(out)

    async def ack(self, position: str) -> None:
        self.acks.append(position)

    async def close(self) -> None:
        self.closed += 1


async def topic_entries(
    redis: Any, namespace: str, topic: str, partitions: int
) -> list[list[dict]]:
    """Each partition's entries of ``topic`` as field dicts (str), in order."""
    out = []
    for p in range(partitions):
        entries = await redis.xrange(f"{namespace}:stream:{{{topic}:{p}}}")
        out.append([{k.decode(): v.decode() for k, v in f.items()} for _, f in entries])
    return out
