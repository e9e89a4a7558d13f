"""Reading a topic's entries without a consumer group, behind :meth:`Admin.browse`
(docs/design.md, "Admin and retention"): ``XRANGE`` from given positions, ``XREAD BLOCK`` to
wait for new entries, and the merge of the partitions in entry-id order."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from redis_streaming._redis.replies import as_int, as_text
from redis_streaming.cluster import is_cluster
from redis_streaming.errors import ConfigurationError, DecodeError, PartitionOutOfRange
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.topics import TopicMeta
from redis_streaming.mq.wire.codec import BYTES, decode_payload, parse_fields
from redis_streaming.mq.wire.message import Message

__all__ = ["POLL_MS", "browse", "check_positions"]

POLL_MS = 100  # a cluster client's wait between two rounds of reads (no XREAD over many slots)
_POSITION = re.compile(r"\d+(-\d+)?")


def check_positions(meta: TopicMeta, after: Mapping[int, str]) -> None:
    """Raise unless every key of ``after`` is a partition of the topic and every value an
    entry id (``"1700000000000-0"``, ``"0-0"`` or ``"0"`` for the start)."""
    for partition, position in after.items():
        if not isinstance(partition, int) or not 0 <= partition < meta.partitions:
            raise PartitionOutOfRange(meta.name, partition, meta.partitions)
        if not isinstance(position, str) or not _POSITION.fullmatch(position):
            raise ConfigurationError(
                f"position {position!r} of partition {partition} is not an entry id; pass the "
                "id of the last entry already seen, such as '1700000000000-0' ('0-0' for the "
                "start)"
            )


async def browse(
    redis: Any,
    keys: Keys,
    topic: str,
    after: Mapping[int, str],
    count: int,
    block_ms: int,
) -> list[Message]:
    """The entries after ``after``'s ids, at most ``count`` per partition, in id order; waits
    up to ``block_ms`` when there are none (0: returns at once)."""
    streams = {keys.stream(topic, p): p for p in sorted(after)}
    pages = await _ranges(redis, streams, after, count)
    if block_ms > 0 and not any(pages.values()):
        if is_cluster(redis):
            # XREAD over several partitions would be a cross-slot command: poll instead.
            await asyncio.sleep(min(block_ms, POLL_MS) / 1000)
            pages = await _ranges(redis, streams, after, count)
        else:
            reply = await redis.xread(
                {key: after[p] for key, p in streams.items()}, count=count, block=block_ms
            )
            pages = {streams[as_text(key)]: found for key, found in _streams(reply)}
    return _merged(topic, pages, count)


async def _ranges(
    redis: Any, streams: dict[str, int], after: Mapping[int, str], count: int
) -> dict[int, list[Any]]:
    """``XRANGE (id + COUNT count`` of every partition, one round trip (one per node)."""
    pipe = redis.pipeline(transaction=False)
    for key, p in streams.items():
        pipe.xrange(key, f"({after[p]}", "+", count=count)
    replies = await pipe.execute()
    return {p: list(r) for p, r in zip(streams.values(), replies, strict=True)}


def _streams(reply: Any) -> list[tuple[Any, list[Any]]]:
    """(stream key, entries) of an ``XREAD`` reply, RESP2 or RESP3."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [(key, found[0]) for key, found in reply.items()]
    return [(key, found) for key, found in reply]


def _order(entry_id: Any) -> tuple[int, int]:
    ms, _, seq = as_text(entry_id).partition("-")
    return int(ms), int(seq or 0)


def _merged(topic: str, pages: dict[int, list[Any]], count: int) -> list[Message]:
    """The pages' entries in id order (ties by partition). A partition that filled its page
    may have more entries: nothing after its last one is returned, so that the next call,
    from the returned positions, still goes on in id order across the partitions."""
    full = [_order(page[-1][0]) for page in pages.values() if len(page) >= count]
    cutoff = min(full) if full else None
    found: list[tuple[tuple[int, int], int, Message]] = []
    for p, page in pages.items():
        for entry_id, fields in page:
            order = _order(entry_id)
            if cutoff is not None and order > cutoff:
                break
            found.append((order, p, _message(topic, p, as_text(entry_id), fields)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [message for _, _, message in found]


def _message(topic: str, partition: int, entry_id: str, fields: dict[bytes, bytes]) -> Message:
    """The entry as a :class:`Message` (no group, attempt as written); an entry a consumer could
    not decode comes with its raw payload bytes as ``application/octet-stream``."""
    try:
        parsed = parse_fields(fields)
        payload = decode_payload(parsed.raw, parsed.content_type)
    except DecodeError:
        raw = fields.get(b"payload", b"")
        key = fields.get(b"key")
        return Message(
            id=entry_id, topic=topic, partition=partition, payload=raw, raw=raw,
            content_type=BYTES, key=None if key is None else key.decode(errors="replace"),
            timestamp=as_int(fields.get(b"ts")),
        )  # fmt: skip
    return Message(
        id=entry_id,
        topic=topic,
        partition=partition,
        payload=payload,
        raw=parsed.raw,
        content_type=parsed.content_type,
        key=parsed.key,
        headers=parsed.headers,
        timestamp=parsed.ts,
        attempt=parsed.attempt,
        origin_id=parsed.origin_id,
    )
