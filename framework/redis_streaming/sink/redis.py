""":class:`RedisSink`: upserts into Redis hashes, sets, sorted sets or strings, written in the
batch's commit (exactly-once)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

from pydantic_core import to_json

from redis_streaming.errors import InvalidArgument
from redis_streaming.ratelimit.spec import RateLimit
from redis_streaming.sink.base import SinkRecord, sink_rate_limit

__all__ = ["RedisOp", "RedisSink", "encode_value"]

RedisKind = Literal["hash", "set", "zset", "string"]
RedisOp = tuple[str, str, list[bytes]]  # command, key, its arguments after the key
_KINDS = ("hash", "set", "zset", "string")
Part = Callable[[SinkRecord], Any]


def encode_value(value: Any) -> bytes:
    """How a value is stored: bytes as they are, text as UTF-8, numbers in decimal, anything
    else (dicts, lists, pydantic models, booleans) as JSON."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value).encode()
    return to_json(value)


def _record_key(rec: SinkRecord) -> Any:
    return rec.key


def _record_value(rec: SinkRecord) -> Any:
    return rec.value


class RedisSink:
    """Writes each record into Redis as part of the batch's commit: exactly-once on a single
    server (the writes are in the commit script) and on Redis Cluster (through the task's
    outbox, each write applied once by the forwarder, in commit order per hash tag).

    ``kind`` and the command each record becomes (``value`` None: the delete):

    - ``"hash"``: ``HSET key field value`` / ``HDEL key field``
    - ``"set"``: ``SADD key field`` / ``SREM key field``
    - ``"zset"``: ``ZADD key score field`` / ``ZREM key field``
    - ``"string"``: ``SET key value`` / ``DEL key``

    ``key`` is a Redis key (used as is, not namespaced) or ``fn(record) -> str``; ``field``
    (hash field, set or sorted-set member), ``value`` and ``score`` are ``fn(record)``,
    with defaults: ``field`` the record's key, ``value`` the record's value, ``score`` the
    value as a number. Values are stored by :func:`encode_value`. A function that raises,
    or a record that cannot be written (no key for ``field``, a score that is not a number),
    fails like an operator's function: the batch runs again, then the record is
    dead-lettered. On a cluster each key's hash tag (or the whole key) gets a small hash of
    forwarding marks, ``<namespace>:fwd:{<tag>}:<job>``: give many keys a common hash tag
    (``"user:{counts}:42"``) to share one. ``rate_limit`` / ``rate_limit_name``: see
    :func:`~redis_streaming.sink.base.sink_rate_limit` (the permits are taken before the
    batch's commit).
    """

    __slots__ = ("field", "key", "kind", "rate_limit", "rate_limit_name", "score", "value")

    def __init__(
        self,
        kind: RedisKind,
        *,
        key: str | Part,
        field: Part | None = None,
        value: Part | None = None,
        score: Part | None = None,
        rate_limit: str | RateLimit | None = None,
        rate_limit_name: str | None = None,
    ) -> None:
        self.rate_limit, self.rate_limit_name = sink_rate_limit(rate_limit, rate_limit_name)
        if kind not in _KINDS:
            raise InvalidArgument(f"RedisSink kind must be one of {_KINDS}, got {kind!r}")
        if not (isinstance(key, str) and key) and not callable(key):
            raise InvalidArgument(f"RedisSink needs a key: a Redis key or fn(record), got {key!r}")
        if kind == "string" and field is not None:
            raise InvalidArgument('RedisSink("string") writes whole keys: it takes no field')
        if score is not None and kind != "zset":
            raise InvalidArgument(f'only RedisSink("zset") takes a score, not {kind!r}')
        for name, fn in (("field", field), ("value", value), ("score", score)):
            if fn is not None and not callable(fn):
                raise InvalidArgument(f"RedisSink {name} must be fn(record), got {fn!r}")
        self.kind = kind
        self.key = key
        self.field = field or _record_key
        self.value = value or _record_value
        self.score = score

    def ops(self, rec: SinkRecord) -> list[RedisOp]:
        """The write of one record as Redis commands (raises :class:`InvalidArgument` when it
        cannot be written)."""
        key = self.key if isinstance(self.key, str) else self.key(rec)
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"a RedisSink key must be a non-empty str, got {key!r}")
        value = self.value(rec)
        if self.kind == "string":
            return [("DEL", key, [])] if value is None else [("SET", key, [encode_value(value)])]
        member = self.field(rec)
        if member is None:
            raise InvalidArgument(
                f"RedisSink({self.kind!r}) got no field for a record without a key: "
                "give field=fn(record)"
            )
        name = encode_value(member)
        if self.kind == "hash":
            if value is None:
                return [("HDEL", key, [name])]
            return [("HSET", key, [name, encode_value(value)])]
        if self.kind == "set":
            return [("SREM" if value is None else "SADD", key, [name])]
        if value is None:
            return [("ZREM", key, [name])]
        score = self.score(rec) if self.score is not None else value
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            raise InvalidArgument(f"a RedisSink zset score must be a number, got {score!r}")
        return [("ZADD", key, [repr(float(score)).encode(), name])]

    def __repr__(self) -> str:
        return f"RedisSink({self.kind!r}, key={self.key!r})"
