"""Reading what CDC appended: the change messages of a table's topic, per key."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from redis_streaming.source import POSITION_HEADER


async def changes(redis: Any, namespace: str, topic: str, partitions: int) -> list[dict[str, Any]]:
    """Every change message of ``topic`` (partition by partition, in order), each with its
    ``partition`` and ``position`` (from the header) added."""
    out = []
    for p in range(partitions):
        for _, fields in await redis.xrange(f"{namespace}:stream:{{{topic}:{p}}}"):
            value = json.loads(fields[b"payload"])
            value["partition"] = p
            value["position"] = json.loads(fields[b"headers"])[POSITION_HEADER]
            out.append(value)
    return out


def by_key(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The messages of each primary key (``str`` of its ``id``), in topic order."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in messages:
        if m["key"] is not None:
            out[str(m["key"]["id"])].append(m)
    return out


async def count(redis: Any, namespace: str, topic: str, partitions: int) -> int:
    """How many entries the topic's partitions hold."""
    pipe = redis.pipeline(transaction=False)
    for p in range(partitions):
        pipe.xlen(f"{namespace}:stream:{{{topic}:{p}}}")
    return sum(await pipe.execute())
