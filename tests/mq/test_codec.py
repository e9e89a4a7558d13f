import datetime

import pytest
import redis.asyncio as aioredis
from pydantic import BaseModel

from redis_streaming import (
    ConfigurationError,
    Consumer,
    DeadLetters,
    DecodeError,
    Keys,
    Message,
    MQOptions,
    RetryPolicy,
)
from redis_streaming.mq.topics import TopicStore
from redis_streaming.mq.wire.codec import (
    BYTES,
    JSON,
    TEXT,
    decode_payload,
    encode_payload,
    entry_args,
    parse_fields,
)
from redis_streaming.mq.wire.envelope import decode_envelope, encode_envelope
from tests.helpers import wait_until


class Order(BaseModel):
    id: str
    amount: float
    at: datetime.datetime


def test_payload_types_map_to_content_types() -> None:
    at = datetime.datetime(2026, 1, 2, 3, 4, 5)
    raw, ct = encode_payload(Order(id="o1", amount=2.5, at=at))
    assert ct == JSON
    assert Order.model_validate(decode_payload(raw, ct)) == Order(id="o1", amount=2.5, at=at)
    assert encode_payload({"a": [1, None]}) == (b'{"a":[1,null]}', JSON)
    assert encode_payload([1, 2]) == (b"[1,2]", JSON)
    assert encode_payload(3) == (b"3", JSON)
    assert encode_payload("héllo") == ("héllo".encode(), TEXT)
    assert encode_payload(b"\x00\xff") == (b"\x00\xff", BYTES)
    assert encode_payload(bytearray(b"ab")) == (b"ab", BYTES)


def test_unencodable_payload_says_what_to_send() -> None:
    with pytest.raises(ConfigurationError, match="pydantic model, dict"):
        encode_payload(object())


@pytest.mark.parametrize(
    ("raw", "ct"), [(b"{bad", JSON), (b"\xff", TEXT), (b"x", "application/xml")]
)
def test_undecodable_payload(raw: bytes, ct: str) -> None:
    with pytest.raises(DecodeError):
        decode_payload(raw, ct)


def test_entry_fields_round_trip() -> None:
    args = entry_args(b"p", JSON, "k", b'{"h":"v"}', 123, attempt=2, origin_id="1-0")
    fields = {
        str(a).encode(): (b if isinstance(b, bytes) else str(b).encode())
        for a, b in zip(args[::2], args[1::2], strict=True)
    }
    parsed = parse_fields(fields)
    assert (parsed.raw, parsed.content_type, parsed.key) == (b"p", JSON, "k")
    assert (parsed.headers, parsed.ts, parsed.attempt, parsed.origin_id) == (
        {"h": "v"},
        123,
        2,
        "1-0",
    )


def test_first_attempt_and_no_key_are_not_written() -> None:
    assert entry_args(b"p", TEXT, None, None, 5) == ["payload", b"p", "content_type", TEXT, "ts", 5]


@pytest.mark.parametrize(("raw", "attempt"), [(b"-30", 1), (b"0", 1), (b"1", 1), (b"4", 4)])
def test_an_attempt_below_1_is_read_as_1(raw: bytes, attempt: int) -> None:
    assert parse_fields({b"payload": b"x", b"attempt": raw}).attempt == attempt


async def test_a_raw_negative_attempt_gets_no_extra_retries(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    """Security review F7: an entry written with ``attempt -30`` is handled max_attempts times,
    then dead-lettered with attempts == max_attempts (not retried for ever)."""
    await TopicStore(rs_redis, fast_options).create("neg", 1)
    await rs_redis.xadd(
        Keys(rs_namespace).stream("neg", 0),
        {"payload": b'{"id":"negatt"}', "content_type": JSON, "attempt": -30},
    )
    attempts: list[int] = []

    async def fails(m: Message) -> None:
        attempts.append(m.attempt)
        raise RuntimeError("always fails")

    consumer = Consumer(rs_redis, fast_options)
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.05, jitter=0.0)
    sub = consumer.subscribe("neg", fails, group="g", retry=policy)
    async with consumer:
        await wait_until(lambda: sub.dead_lettered == 1, 10, "the entry to be dead-lettered")
    assert attempts == [1, 2, 3]
    [dead] = await DeadLetters(rs_redis, fast_options).list("neg")
    assert (dead.reason, dead.attempts) == ("max_attempts", 3)


@pytest.mark.parametrize(
    "fields",
    [{}, {b"payload": b"x", b"headers": b"[1]"}, {b"payload": b"x", b"ts": b"soon"}],
)
def test_malformed_entries(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(DecodeError):
        parse_fields(fields)


def test_envelope_is_binary_safe() -> None:
    fields = [b"payload", b"a:b,\x00\xff", "ts", 7]
    env = encode_envelope(fields, "id1")
    assert decode_envelope(env) == ("id1", [b"payload", b"a:b,\x00\xff", b"ts", b"7"])
    assert decode_envelope(encode_envelope(fields)) != decode_envelope(encode_envelope(fields))
