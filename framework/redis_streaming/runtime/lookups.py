"""Reads, for a batch, the table values its joins need: one pipeline of ``HMGET`` per table
partition holding the batch's keys (the key's partition, as producers hash it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import TypeAdapter

from redis_streaming.mq.producer import partition_for_key
from redis_streaming.runtime.joining import Table
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.state.codec import decode, encode_key

__all__ = ["TableLookups"]


class TableLookups:
    """The lookups of one task: ``load`` returns ``{(table name, key): value}``."""

    def __init__(
        self, redis: Any, keys: RuntimeKeys, tables: list[Table], partitions: dict[str, int]
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.tables = tables
        self.partitions = partitions  # table topic -> partition count
        self._types = {
            t.name: TypeAdapter(t.value_type) if t.value_type is not None else None for t in tables
        }

    async def load(self, record_keys: Iterable[str | None]) -> dict[tuple[str, str | None], Any]:
        """The table values of ``record_keys`` (absent keys are left out)."""
        keys = [k for k in set(record_keys) if k is not None]
        if not keys or not self.tables:
            return {}
        calls: list[tuple[Table, list[str], str]] = []
        for table in self.tables:
            count = self.partitions[table.topic]
            by_partition: dict[int, list[str]] = {}
            for key in keys:
                by_partition.setdefault(partition_for_key(key, count), []).append(key)
            for p, ks in by_partition.items():
                hash_key = self.keys.state(table.topic, p, table.job.name, table.name)
                calls.append((table, ks, hash_key))
        pipe = self.redis.pipeline(transaction=False)
        for _, ks, hash_key in calls:
            pipe.hmget(hash_key, [encode_key(k) for k in ks])
        found: dict[tuple[str, str | None], Any] = {}
        for (table, ks, _), values in zip(calls, await pipe.execute(), strict=True):
            adapter = self._types[table.name]
            for key, raw in zip(ks, values, strict=True):
                if raw is None:
                    continue
                value = decode(raw)
                if adapter is not None:
                    if table.versions is None:
                        value = adapter.validate_python(value)
                    else:
                        value = [[ts, None if v is None else adapter.validate_python(v)]
                                 for ts, v in value]  # fmt: skip
                found[(table.name, key)] = value
        return found
