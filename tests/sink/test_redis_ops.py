"""RedisSink's pure part: the commands a record becomes, value encoding, bad definitions and
records; the hash tag that puts a forwarding mark in a key's cluster slot."""

from __future__ import annotations

from typing import Any

import pytest

from redis_streaming import RedisSink, SinkRecord
from redis_streaming.errors import InvalidArgument
from redis_streaming.runtime.forwarder import pack_items, unpack_items
from redis_streaming.runtime.keys import RuntimeKeys, hash_tag
from redis_streaming.sink.redis import encode_value


def rec(key: str | None, value: Any) -> SinkRecord:
    return SinkRecord(key, value, 1, "1-0")


def test_each_kind_upserts_and_deletes_on_none() -> None:
    h = RedisSink("hash", key="h")
    assert h.ops(rec("k", {"a": 1})) == [("HSET", "h", [b"k", b'{"a":1}'])]
    assert h.ops(rec("k", None)) == [("HDEL", "h", [b"k"])]
    s = RedisSink("set", key=lambda r: f"s:{r.value}", field=lambda r: r.key)
    assert s.ops(rec("m", 2)) == [("SADD", "s:2", [b"m"])]
    assert s.ops(rec("m", None)) == [("SREM", "s:None", [b"m"])]
    z = RedisSink("zset", key="z")
    assert z.ops(rec("m", 3)) == [("ZADD", "z", [b"3.0", b"m"])]
    assert z.ops(rec("m", None)) == [("ZREM", "z", [b"m"])]
    t = RedisSink("string", key=lambda r: f"t:{r.key}")
    assert t.ops(rec("k", "text")) == [("SET", "t:k", [b"text"])]
    assert t.ops(rec("k", None)) == [("DEL", "t:k", [])]


def test_values_are_stored_plainly() -> None:
    assert encode_value(b"\x00") == b"\x00"
    assert encode_value("grüße") == "grüße".encode()
    assert encode_value(7) == b"7"
    assert encode_value(0.5) == b"0.5"
    assert encode_value(True) == b"true"
    assert encode_value([1, None]) == b"[1,null]"


def test_bad_definitions_and_records_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        RedisSink("list", key="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        RedisSink("hash", key="")
    with pytest.raises(InvalidArgument):
        RedisSink("string", key="x", field=lambda r: r.key)
    with pytest.raises(InvalidArgument):
        RedisSink("hash", key="x", score=lambda r: 1)
    with pytest.raises(InvalidArgument, match="no field"):
        RedisSink("hash", key="h").ops(rec(None, 1))
    with pytest.raises(InvalidArgument, match="score"):
        RedisSink("zset", key="z").ops(rec("m", "high"))
    with pytest.raises(InvalidArgument, match="score"):
        RedisSink("zset", key="z").ops(rec("m", float("nan")))
    with pytest.raises(InvalidArgument, match="non-empty str"):
        RedisSink("string", key=lambda r: 5).ops(rec("k", 1))


def test_hash_tags_as_redis_cluster_reads_them() -> None:
    assert hash_tag("user:{42}:name") == "42"
    assert hash_tag("plain") == "plain"
    assert hash_tag("a{b") == "a{b"
    assert hash_tag("{x}{y}") == "x"
    for bad in ("a}b", "{}x", "a{}b"):  # Redis hashes the whole key: no tag names its slot
        with pytest.raises(InvalidArgument, match="hash tag"):
            hash_tag(bad)
    keys = RuntimeKeys("rs")
    assert keys.forwarded_to("rs:stream:{out:3}", "j") == keys.forwarded("out", 3, "j")
    assert keys.forwarded_to("user:{42}:name", "j") == "rs:fwd:{42}:j"


def test_packed_items_round_trip() -> None:
    items = [b"", b"HSET", "grüße".encode(), bytes(range(256))]
    assert unpack_items(pack_items(items)) == items
