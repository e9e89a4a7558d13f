"""Browsing, replaying and purging dead letters (``rs:dlq:{T}``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from redis_streaming._redis.errors import (
    error_code,
    guarded,
    is_connection_error,
    unavailable,
)
from redis_streaming._redis.replies import as_int
from redis_streaming.errors import DecodeError, InvalidArgument, RedisStreamingError
from redis_streaming.mq.keys import Keys, validate_name
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.scripts import script
from redis_streaming.mq.wire.codec import decode_payload, parse_fields

__all__ = ["DeadLetterEntry", "DeadLetterPage", "DeadLetters", "validate_entry_id"]

_PAGE = 200
_DLQ_PAGE = script("dlq_page")
PREVIEW_BYTES = 1024
"""Bytes of each payload a :meth:`DeadLetters.page` returns by default (1 KiB)."""
FIELD_BYTES = 8192
"""Bytes of any other field a page returns (headers, error, ...); the traceback is left out."""
PAGE_MAX_BYTES = 4 * 1024 * 1024
"""Default bound of what one :meth:`DeadLetters.page` has Redis send: 4 MiB."""
PAGE_MAX_SCAN = 10_000
"""Default bound of the dead letters one :meth:`DeadLetters.page` reads in Redis (a group
filter may have to skip many); the page's ``next`` continues from where it stopped."""
# What one script call may read: it blocks Redis meanwhile (copying entries into Lua).
_SCAN_STEP = 250
_READ_STEP_BYTES = 2 * 1024 * 1024
_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_U64 = 2**64 - 1


def validate_entry_id(value: object) -> str:
    """``value`` if it is a complete stream entry id (``<ms>-<seq>``, both 64-bit unsigned).

    Raises :class:`~redis_streaming.errors.InvalidArgument` otherwise: Redis would reject
    it, or (for ``<ms>`` alone) read it as a range of ids.
    """
    if isinstance(value, str):
        match = _ID.fullmatch(value)
        if match is not None and int(match[1]) <= _U64 and int(match[2]) <= _U64:
            return value
    raise InvalidArgument(
        f"invalid dead-letter id {value!r}: use an entry id as listed, e.g. "
        "'1700000000000-0' (milliseconds, '-', sequence number)"
    )


@dataclass(slots=True, frozen=True)
class DeadLetterEntry:
    """One dead letter: the original message and where, why and how often it failed.

    ``payload`` is the original raw bytes (see :meth:`decoded` for the value), or in a
    :meth:`DeadLetters.page` only its start: ``payload_size`` is always the full size in bytes
    (see :attr:`payload_truncated`), and a page's ``traceback`` is empty. ``failed_at`` is epoch
    milliseconds; ``reason`` is one of ``max_attempts``, ``non_retryable``, ``rejected``,
    ``undecodable`` and ``poison``.
    """

    id: str
    topic: str
    partition: int
    group: str
    consumer: str
    attempts: int
    reason: str
    error_type: str
    error: str
    traceback: str
    payload: bytes
    content_type: str
    key: str | None
    headers: dict[str, str] = field(default_factory=dict)
    origin_id: str = ""
    failed_at: int = 0
    payload_size: int = -1  # -1: len(payload), filled in on creation

    def __post_init__(self) -> None:
        if self.payload_size < 0:
            object.__setattr__(self, "payload_size", len(self.payload))

    @property
    def payload_truncated(self) -> bool:
        """True when ``payload`` is only the start of the payload (in a page)."""
        return len(self.payload) < self.payload_size

    def decoded(self) -> Any:
        """The payload decoded by its content type; raises ``DecodeError`` if it cannot be."""
        return decode_payload(self.payload, self.content_type)


def _failed(reply: Any) -> bool:
    """A pipeline reply that is an error (``execute(raise_on_error=False)``)."""
    return isinstance(reply, Exception)


def _text_field(fields: dict[bytes, bytes], name: bytes) -> str:
    """A field of a dead letter as text ("" when absent; bad UTF-8 replaced, it is shown as is)."""
    value = fields.get(name)
    return value.decode(errors="replace") if value is not None else ""


@dataclass(slots=True, frozen=True)
class DeadLetterPage:
    """A page of :meth:`DeadLetters.page`: ``entries`` newest first, and ``next``, the id to
    pass as ``before`` for the next page (None once the oldest dead letter has been read).

    A page can hold fewer entries than asked for, even none, and still have a ``next``: it
    stops after reading ``max_scan`` dead letters or returning ``max_bytes``, so a walk with a
    group filter over a long DLQ goes on in the next call instead of in one long one.
    """

    entries: list[DeadLetterEntry]
    next: str | None


def _entry(
    topic: str, entry_id: bytes, fields: dict[bytes, bytes], payload_size: int = -1
) -> DeadLetterEntry:
    try:
        parsed = parse_fields(fields)
        headers, key = parsed.headers, parsed.key
    except DecodeError:  # dead-lettered because its fields were malformed: show them raw
        headers, key = {}, _text_field(fields, b"key") or None
    return DeadLetterEntry(
        id=entry_id.decode(),
        topic=topic,
        partition=as_int(fields.get(b"dlq_partition")),
        group=_text_field(fields, b"dlq_group"),
        consumer=_text_field(fields, b"dlq_consumer"),
        attempts=as_int(fields.get(b"dlq_attempts")),
        reason=_text_field(fields, b"dlq_reason"),
        error_type=_text_field(fields, b"dlq_error_type"),
        error=_text_field(fields, b"dlq_error"),
        traceback=_text_field(fields, b"dlq_traceback"),
        payload=fields.get(b"payload", b""),
        content_type=_text_field(fields, b"content_type") or "application/octet-stream",
        key=key,
        headers=headers,
        origin_id=_text_field(fields, b"dlq_origin_id"),
        failed_at=as_int(fields.get(b"dlq_failed_ts")),
        payload_size=payload_size,
    )


class DeadLetters:
    """The dead-letter streams of a namespace: list, get, replay and purge.

    Replay sends an entry back to the group that failed it only (its redelivery stream on the
    entry's partition), as attempt 1, then deletes it from the DLQ. The append happens before the
    delete (they are in different cluster slots): a crash in between can replay an entry twice,
    never lose it.
    """

    def __init__(self, redis: Any, options: MQOptions | None = None) -> None:
        self.redis = redis
        self.options = options or MQOptions()
        self.keys = Keys(self.options.namespace)

    async def _call(self, doing: str, topic: str, coro: Any) -> Any:
        """``await coro``; a lost connection raises ``RedisUnavailable`` saying
        "<doing> dead letters of <topic>"."""
        return await guarded(self.redis, coro, f"{doing} dead letters of {topic!r}")

    async def length(self, topic: str) -> int:
        """Number of dead letters of ``topic``."""
        validate_name(topic)
        return int(await self._call("counting", topic, self.redis.xlen(self.keys.dlq(topic))))

    @staticmethod
    def _has_older(before: str | None) -> bool:
        """Whether anything can be older than ``before`` (checked; nothing is older than 0-0,
        and Redis rejects the bound "(0-0")."""
        return before is None or any(int(n) for n in validate_entry_id(before).split("-"))

    async def page(
        self,
        topic: str,
        group: str | None = None,
        count: int = 50,
        before: str | None = None,
        *,
        preview_bytes: int = PREVIEW_BYTES,
        max_bytes: int = PAGE_MAX_BYTES,
        max_scan: int = PAGE_MAX_SCAN,
    ) -> DeadLetterPage:
        """Newest first, at most ``count``, only ``group``'s when given, with what Redis sends
        bounded: each payload cut to ``preview_bytes`` on the server (``payload_size`` has the
        full size), other fields to 8 KiB, no traceback; the page ends once it has
        ``max_bytes`` of values or has read ``max_scan`` dead letters, with ``next`` where it
        stopped. Pass ``next`` as ``before`` to continue; a malformed ``before`` raises
        :class:`~redis_streaming.errors.InvalidArgument`. :meth:`get` gives one in full.
        """
        validate_name(topic)
        if group is not None:
            validate_name(group, "group")
        if not self._has_older(before) or count < 1:
            return DeadLetterPage([], None)
        key = self.keys.dlq(topic)
        max_bytes, max_scan = max(1, max_bytes), max(1, max_scan)  # at least one entry read
        out: list[DeadLetterEntry] = []
        cursor, scanned, returned = before or "", 0, 0
        while True:
            step = min(_SCAN_STEP, max_scan - scanned)
            args = [cursor, count - len(out), group or "", max(0, preview_bytes), FIELD_BYTES,
                    max_bytes - returned, step, _READ_STEP_BYTES]  # fmt: skip
            reply = await self._call("reading", topic, _DLQ_PAGE(self.redis, [key], args))
            cursor, scanned = reply[0].decode(), scanned + int(reply[1])
            for entry_id, size, *flat in reply[2:]:
                returned += sum(len(value) for value in flat)
                fields = dict(zip(flat[::2], flat[1::2], strict=True))
                out.append(_entry(topic, entry_id, fields, int(size)))
            if not cursor:
                return DeadLetterPage(out, None)
            if len(out) >= count or returned >= max_bytes or scanned >= max_scan:
                return DeadLetterPage(out, cursor)

    async def get(self, topic: str, id: str) -> DeadLetterEntry | None:
        """The dead letter with this id, or ``None``; a malformed id raises
        :class:`~redis_streaming.errors.InvalidArgument`."""
        validate_name(topic)
        validate_entry_id(id)
        read = self.redis.xrange(self.keys.dlq(topic), id, id, count=1)
        found = await self._call("reading", topic, read)
        return _entry(topic, *found[0]) if found else None

    async def _select(
        self, topic: str, ids: list[str] | None, group: str | None
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        key = self.keys.dlq(topic)
        if ids is not None:
            ids = [
                validate_entry_id(i) for i in dict.fromkeys(ids)
            ]  # a repeated id is replayed once
            pipe = self.redis.pipeline(transaction=False)
            for i in ids:
                pipe.xrange(key, i, i, count=1)
            found = [e for page in await self._call("reading", topic, pipe.execute()) for e in page]
        else:
            found, lower = [], "-"
            while True:
                read = self.redis.xrange(key, lower, "+", count=_PAGE)
                page = await self._call("reading", topic, read)
                found += page
                if len(page) < _PAGE:
                    break
                lower = f"({page[-1][0].decode()}"
        if group is not None:
            found = [(i, f) for i, f in found if f.get(b"dlq_group") == group.encode()]
        return found

    async def replay(
        self, topic: str, ids: list[str] | None = None, group: str | None = None
    ) -> int:
        """Send dead letters back to the group that failed them; returns how many.

        All of the topic's dead letters, or those with ``ids`` (ids not in the DLQ are skipped;
        a malformed one raises :class:`~redis_streaming.errors.InvalidArgument` before
        anything is replayed), optionally only ``group``'s.
        Each goes to ``rs:redeliver:{T:i}:G`` of its group and partition with attempt 1 and its
        original id as ``origin_id``, and is then removed from the DLQ.

        A dead letter whose append fails stays in the DLQ; the others are replayed and removed,
        then :class:`~redis_streaming.errors.RedisStreamingError` (or
        :class:`~redis_streaming.errors.RedisUnavailable` for a lost connection) says how many
        failed, where to and why.
        """
        validate_name(topic)
        if group is not None:
            validate_name(group, "group")
        entries = await self._select(topic, ids, group)
        key = self.keys.dlq(topic)
        replayed = 0
        for start in range(0, len(entries), _PAGE):
            chunk = entries[start : start + _PAGE]
            pipe = self.redis.pipeline(transaction=False)
            targets = []
            for entry_id, fields in chunk:
                target_group = fields.get(b"dlq_group", b"").decode()
                partition = int(fields.get(b"dlq_partition") or 0)
                args: list[Any] = []
                for name, value in fields.items():
                    if not name.startswith(b"dlq_") and name not in (b"attempt", b"origin_id"):
                        args += (name, value)
                args += ("origin_id", fields.get(b"dlq_origin_id") or entry_id)
                target = self.keys.redeliver(topic, partition, validate_name(target_group, "group"))
                targets.append(target)
                pipe.execute_command("XADD", target, "*", *args)
            # Each dead letter is removed only once its append has succeeded: a failed append
            # leaves it listed, and the appended ones are not replayed a second time.
            replies = await self._call("replaying", topic, pipe.execute(raise_on_error=False))
            done = [i for (i, _), r in zip(chunk, replies, strict=True) if not _failed(r)]
            if done:
                await self._call("removing replayed", topic, self.redis.xdel(key, *done))
            replayed += len(done)
            if len(done) < len(chunk):
                raise self._replay_failed(topic, chunk, targets, replies, replayed)
        return replayed

    def _replay_failed(
        self,
        topic: str,
        chunk: list[tuple[bytes, dict[bytes, bytes]]],
        targets: list[str],
        replies: list[Any],
        replayed: int,
    ) -> Exception:
        rows = zip(chunk, targets, replies, strict=True)
        failures = [(i, t, r) for (i, _), t, r in rows if _failed(r)]
        entry_id, target, error = failures[0]
        if is_connection_error(error):
            return unavailable(error, self.redis, f"replaying dead letters of {topic!r}")
        if error_code(error) == "WRONGTYPE":
            fix = f"{target!r} must be a stream or absent (see TYPE); delete or rename it"
        else:
            fix = "fix the cause"
        return RedisStreamingError(
            f"replaying dead letters of {topic!r}: {len(failures)} could not be appended to "
            f"their group's redelivery stream and stay in the dead-letter stream (the first, "
            f"{entry_id.decode()}, to {target!r}: {error}); {replayed} were replayed. To "
            f"replay the rest, {fix}, then replay again"
        )

    async def purge(self, topic: str, ids: list[str] | None = None) -> int:
        """Delete dead letters (all of the topic's, or those with ``ids``); returns how many.

        A malformed id raises :class:`~redis_streaming.errors.InvalidArgument` before
        anything is deleted."""
        validate_name(topic)
        key = self.keys.dlq(topic)
        for i in ids or ():
            validate_entry_id(i)
        if ids is None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.xlen(key)
            pipe.delete(key)
            count, _ = await self._call("purging", topic, pipe.execute())
            return int(count)
        if not ids:
            return 0
        return int(await self._call("purging", topic, self.redis.xdel(key, *ids)))

    # Last in the class: in an annotation below it, `list` would name this method, not the type.
    async def list(
        self, topic: str, group: str | None = None, count: int = 50, before: str | None = None
    ) -> list[DeadLetterEntry]:
        """Newest first, at most ``count``, whole (payload and traceback); only ``group``'s
        when given.

        Page with ``before``: pass the ``id`` of the last entry of the previous page; only
        older entries are listed. A malformed id raises
        :class:`~redis_streaming.errors.InvalidArgument`. This reads whole entries (with a
        group, until ``count`` match): to browse a DLQ whose entries may be large, use
        :meth:`page`, which bounds what Redis sends.
        """
        validate_name(topic)
        if group is not None:
            validate_name(group, "group")
        if not self._has_older(before) or count < 1:
            return []
        key = self.keys.dlq(topic)
        out: list[DeadLetterEntry] = []
        upper = f"({before}" if before else "+"
        while len(out) < count:
            step = _PAGE if group is not None else min(_PAGE, count - len(out))
            read = self.redis.xrevrange(key, upper, "-", count=step)
            page = await self._call("reading", topic, read)
            for entry_id, fields in page:
                if group is None or fields.get(b"dlq_group") == group.encode():
                    out.append(_entry(topic, entry_id, fields))
                    if len(out) == count:
                        break
            if len(page) < step:
                break
            upper = f"({page[-1][0].decode()}"
        return out
