"""Reading a task's input partition: new entries (``XREADGROUP``) and pending ones
(``XAUTOCLAIM``), for one stage's consumer group."""

from __future__ import annotations

from typing import Any

from redis_streaming.cluster import route

__all__ = ["Entry", "PartitionReader"]

Entry = tuple[bytes, dict[bytes, bytes]]
_CLAIM_COUNT = 500


class PartitionReader:
    """The reads of one task: its group's entries on one partition stream, as ``consumer``."""

    __slots__ = ("batch_size", "consumer", "group", "redis", "stream")

    def __init__(self, redis: Any, stream: str, group: str, consumer: str, batch_size: int) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.batch_size = batch_size

    def _read(self, target: Any, block_ms: int | None) -> Any:
        block = ("BLOCK", block_ms) if block_ms is not None else ()
        return target.execute_command(
            "XREADGROUP", "GROUP", self.group, self.consumer, "COUNT", self.batch_size, *block,
            "STREAMS", self.stream, ">",
            **route(self.redis, self.stream),  # cluster: the partition's node, found locally
        )  # fmt: skip

    async def read(self, block_ms: int) -> list[Entry]:
        """Up to a batch of new entries, waiting at most ``block_ms`` for the first."""
        return entries(await self._read(self.redis, block_ms))

    def queue_read(self, pipe: Any) -> None:
        """Add a read of the next batch (not blocking) to ``pipe``; its reply goes to
        :func:`entries`."""
        self._read(pipe, None)

    async def claim(self, min_idle_ms: int) -> list[Entry]:
        """Take the group's pending entries idle for ``min_idle_ms`` (0: all), in id order.
        Entries trimmed from the stream while pending are acknowledged: nothing is left to
        process of them."""
        cursor: Any = "0-0"
        claimed: list[Entry] = []
        while True:
            reply = await self.redis.xautoclaim(
                self.stream, self.group, self.consumer, min_idle_ms,
                start_id=cursor, count=_CLAIM_COUNT,
            )  # fmt: skip
            cursor = reply[0]
            claimed += [(eid, f) for eid, f in reply[1] if f is not None]
            for eid in reply[2] if len(reply) > 2 else ():
                await self.redis.xack(self.stream, self.group, eid)
            if cursor in (b"0-0", "0-0"):
                return claimed


def entries(reply: Any) -> list[Entry]:
    """The entries of an ``XREADGROUP`` reply on one stream (RESP2 or RESP3)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [e for found in reply.values() for e in found[0]]
    return [e for _, found in reply for e in found]


def id_order(entry: Entry) -> tuple[int, int]:
    """Sort key of an entry: its id as numbers (``ms``, ``seq``)."""
    ms, _, seq = entry[0].partition(b"-")
    return int(ms), int(seq or 0)
