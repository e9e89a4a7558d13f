"""Request and reply: the headers a request carries and the inbox its replies come to.

A request is an ordinary message with two more headers: ``x-reply-to`` (the id of the
requesting producer's inbox) and ``x-correlation-id`` (one per request). Whoever handles it
answers with :meth:`Producer.reply <redis_streaming.Producer.reply>`: one entry on the
requester's reply stream ``<ns>:reply:{<inbox>}`` carrying the same ``x-correlation-id`` (and
``x-reply-error`` for a failure), written with ``NOMKSTREAM``, so a requester that is gone
(its stream expired) gets nothing written. See docs/producer.md, "Request and reply".

:class:`ReplyInbox` is the requesting side: it creates the stream (empty, with a TTL), reads it
with one ``XREAD BLOCK`` loop that refreshes the TTL on every round trip, and resolves each
request's future by correlation id. The loop runs only while requests wait for replies; once
it stops, the stream expires after :data:`INBOX_TTL_S`, as it does when the process dies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from redis_streaming._redis.background import Prefixed, cancel_and_wait, log_retry
from redis_streaming._redis.backoff import Backoff
from redis_streaming._redis.errors import is_connection_error
from redis_streaming._redis.names import NAME
from redis_streaming._redis.replies import as_text
from redis_streaming.cluster import route
from redis_streaming.errors import DecodeError, InvalidArgument, RequestFailed
from redis_streaming.mq.wire.codec import EntryFields, decode_payload, parse_fields
from redis_streaming.mq.wire.message import Message, SendResult

__all__ = [
    "CORRELATION_ID",
    "INBOX_TTL_S",
    "REPLY_ERROR",
    "REPLY_MAXLEN",
    "REPLY_TO",
    "Reply",
    "ReplyInbox",
    "headers_of_reply",
    "headers_of_request",
    "reply_address",
]

REPLY_TO = "x-reply-to"
CORRELATION_ID = "x-correlation-id"
REPLY_ERROR = "x-reply-error"
INBOX_TTL_S = 30
"""Seconds a reply stream outlives its last refresh (the reader refreshes it every read)."""
REPLY_MAXLEN = 10_000
"""Approximate cap of a reply stream, a bound for replies nobody reads; the reader trims what
it has read anyway."""
_READ_COUNT = 1000

log = logging.getLogger(__name__)


def reply_address(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """``(inbox id, correlation id)`` of a request's headers; None for a message that is not a
    request, or whose reply address is not a valid name (nothing can be answered there)."""
    inbox, correlation = headers.get(REPLY_TO), headers.get(CORRELATION_ID)
    if inbox is None or correlation is None:
        return None
    if NAME.fullmatch(inbox) is None:
        log.warning("a request's %s header %r is not an inbox id; not answered", REPLY_TO, inbox)
        return None
    return inbox, correlation


def headers_of_request(
    headers: Mapping[str, str] | None, inbox: str, correlation_id: str
) -> dict[str, str]:
    """A request's headers: the caller's and the reply address."""
    if headers and (REPLY_TO in headers or CORRELATION_ID in headers):
        raise InvalidArgument(
            f"headers {REPLY_TO!r} and {CORRELATION_ID!r} are set by request(); leave them out"
        )
    return {**(headers or {}), REPLY_TO: inbox, CORRELATION_ID: correlation_id}


def headers_of_reply(correlation_id: str, error: str | None) -> dict[str, str]:
    """A reply's headers: the request's correlation id, and the error of an error reply."""
    if error is None:
        return {CORRELATION_ID: correlation_id}
    return {CORRELATION_ID: correlation_id, REPLY_ERROR: error}


class Reply(NamedTuple):
    """What the inbox hands to a waiting request: the reply's entry id and fields, or why no
    reply can come (``failure``)."""

    id: str
    fields: EntryFields | None
    failure: str | None = None

    def message(self, request: SendResult) -> Message:
        """The reply as the requester gets it; raises :class:`RequestFailed` for an error
        reply or a failure."""
        fields = self.fields
        if fields is None:
            raise RequestFailed(request.topic, self.failure or "no reply")
        if (error := fields.headers.get(REPLY_ERROR)) is not None:
            raise RequestFailed(request.topic, error)
        return Message(
            id=self.id,
            topic=request.topic,
            partition=request.partition,
            payload=decode_payload(fields.raw, fields.content_type),
            raw=fields.raw,
            content_type=fields.content_type,
            headers=fields.headers,
            timestamp=fields.ts,
        )


class ReplyInbox:
    """The reply stream of one producer and the reader that resolves waiting requests.

    :meth:`expect` registers a correlation id (starting the reader, and creating the stream,
    when none runs); the reader resolves its future with the :class:`Reply`; :meth:`forget`
    drops it (after the reply, or a timeout). :meth:`close` stops the reader, fails what still
    waits and deletes the stream.
    """

    def __init__(self, redis: Any, key: str, *, block_ms: int) -> None:
        self.redis = redis
        self.key = key
        self.block_ms = block_ms
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._last = "0-0"
        self._log = Prefixed(log, f"reply inbox {key}")

    @property
    def reading(self) -> bool:
        """True while the reader task runs."""
        return self._task is not None and not self._task.done()

    async def expect(self, correlation_id: str) -> asyncio.Future[Reply]:
        """A future for the reply to ``correlation_id``; the stream exists and is read once
        this returns, so a request sent afterwards cannot miss its reply."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            async with self._lock:  # one opening at a time: a second would empty the stream
                if not self.reading:
                    await self._open()
                    self._task = asyncio.create_task(self._read(), name=f"read {self.key}")
        except BaseException:
            self._pending.pop(correlation_id, None)
            raise
        return future

    def forget(self, correlation_id: str) -> None:
        """Stop waiting for ``correlation_id`` (a reply that comes later is dropped)."""
        self._pending.pop(correlation_id, None)

    async def _open(self) -> None:
        """Create the stream empty (or empty it: nothing waits for what it holds) with its TTL;
        the reader starts after the id this returns."""
        pipe = self.redis.pipeline(transaction=True)  # one key: one slot, also on a cluster
        pipe.execute_command("XADD", self.key, "MAXLEN", "0", "*", "open", "1")
        pipe.expire(self.key, INBOX_TTL_S)
        created, _ = await pipe.execute()
        self._last = as_text(created)

    async def _read(self) -> None:
        """Read replies while requests wait; back off after errors. Connection errors are
        retried (requests time out meanwhile); any other error fails the waiting requests."""
        backoff = Backoff()
        while self._pending:
            try:
                await self._read_once()
            except Exception as exc:
                wait = backoff.next_delay()
                log_retry(self._log, exc, wait)
                if not is_connection_error(exc):
                    self._fail_all(f"reading the replies failed: {exc}")
                await asyncio.sleep(wait)
            else:
                backoff.reset()

    async def _read_once(self) -> None:
        # The TTL is refreshed and what was read is trimmed in the same round trip as the read.
        pipe = self.redis.pipeline(transaction=False)
        pipe.expire(self.key, INBOX_TTL_S)
        pipe.execute_command("XTRIM", self.key, "MINID", self._last)
        pipe.execute_command(
            "XREAD", "COUNT", _READ_COUNT, "BLOCK", self.block_ms,
            "STREAMS", self.key, self._last,
            **route(self.redis, self.key),
        )  # fmt: skip
        alive, _, replies = await pipe.execute()
        for _, entries in replies or ():
            for entry_id, fields in entries:
                self._last = as_text(entry_id)
                self._resolve(self._last, fields)
        if not alive:  # expired (a stalled process) or lost (a server restart): make it again
            self._log.warning("the reply stream was gone; created again")
            await self._open()

    def _resolve(self, entry_id: str, raw: dict[bytes, bytes]) -> None:
        try:
            fields = parse_fields(raw)
        except DecodeError as exc:
            self._log.warning("dropped reply %s: %s", entry_id, exc)
            return
        future = self._pending.pop(fields.headers.get(CORRELATION_ID, ""), None)
        if future is not None and not future.done():
            future.set_result(Reply(entry_id, fields))

    def _fail_all(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_result(Reply("", None, reason))

    async def close(self) -> None:
        """Stop the reader, fail the requests still waiting, delete the stream. Idempotent; a
        later :meth:`expect` opens the inbox again."""
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        self._fail_all("the producer was closed before the reply came")
        if task is not None:
            try:
                await self.redis.delete(self.key)
            except Exception as exc:  # it expires by itself
                self._log.warning("could not delete the reply stream (it expires): %s", exc)
