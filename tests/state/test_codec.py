"""The state codec (redis_streaming.state.codec): exact round trips of every kind of value it
promises, raw bytes byte for byte, deterministic keys, and clear errors for what it refuses."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from redis_streaming.errors import ConfigurationError, DecodeError, InvalidArgument
from redis_streaming.state.codec import decode, encode, encode_key

UTC = datetime.UTC
ALL_BYTES = bytes(range(256))


def same(a: Any, b: Any) -> bool:
    """``a == b`` and of the same types all the way down (``1 != 1.0 != True``, ``-0.0 != 0.0``,
    ``nan`` is ``nan``, dict order counts)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    return bool(a == b)


PLAIN = [
    None,
    True,
    False,
    0,
    -1,
    12_345,
    2**63 - 1,
    2**64 - 1,  # the largest int MessagePack holds natively
    -(2**63),  # the smallest
    2**64,  # beyond: an extension type
    -(2**63) - 1,
    2**70,
    -(2**200),
    0.1,
    3.5,
    -0.0,
    math.inf,
    -math.inf,
    1e308,
    5e-324,
    "",
    "x",
    "héllo ✓ 🚀",
    "lorem ipsum " * 90,
    b"",
    ALL_BYTES,
    [],
    [1, "a", None, [2.5, [b"\xff"]]],
    {},
    {"count": 12, "sum": 3.5, "last": "x"},
    {"z": 1, "a": 2},  # insertion order is kept
    {"nested": {"list": [1, 2**80, {"b": b"\x00"}]}},
    {1: "int key", 2.5: "float key", b"k": "bytes key", None: "none key", ("t", 1): "tuple"},
    [i * 1.37 + 0.01 for i in range(20)],
]


@pytest.mark.parametrize("value", PLAIN, ids=[repr(v)[:30] for v in PLAIN])
def test_plain_values_round_trip_exactly(value: Any) -> None:
    assert same(decode(encode(value)), value)


def test_nan_and_infinities_round_trip() -> None:
    back = decode(encode([math.nan, math.inf, -math.inf, -0.0]))
    assert math.isnan(back[0])
    assert back[1:3] == [math.inf, -math.inf]
    assert math.copysign(1, back[3]) == -1


def test_bytes_round_trip_byte_for_byte() -> None:
    not_utf8 = b"\xff\xfe\x00\xc3\x28 \xed\xa0\x80"
    for value in (ALL_BYTES, not_utf8, b"", ALL_BYTES * 40):
        data = encode(value)
        assert type(decode(data)) is bytes
        assert decode(data) == value
        assert decode(data, bytes) == value
    assert decode(encode({"raw": not_utf8, "list": [not_utf8]})) == {
        "raw": not_utf8,
        "list": [not_utf8],
    }
    # Raw, not base64: the encoding costs 2-5 bytes over the payload.
    assert len(encode(ALL_BYTES)) == 256 + 3
    assert decode(encode(bytearray(b"\x00\xff"))) == b"\x00\xff"
    assert decode(encode(memoryview(b"\x00\xff"))) == b"\x00\xff"


def test_ints_beyond_64_bits_round_trip_but_cannot_be_dict_keys() -> None:
    for n in (2**64, -(2**63) - 1, 2**64 + 1, -(2**64), 2**1000, -(2**1000) + 7):
        assert same(decode(encode(n)), n)
        assert same(decode(encode({"n": [n]})), {"n": [n]})
    with pytest.raises(InvalidArgument, match="beyond 64 bits"):
        encode({2**70: "x"})


def test_tuples_come_back_as_lists_or_as_the_type_asked_for() -> None:
    assert same(decode(encode(("a", 1))), ["a", 1])
    assert same(decode(encode(("a", 1)), tuple[str, int]), ("a", 1))
    assert same(decode(encode([("a", 1), ("b", 2)]), list[tuple[str, int]]), [("a", 1), ("b", 2)])


class Inner(BaseModel):
    label: str
    raw: bytes


class Reading(BaseModel):
    sensor: str
    count: int
    total: float
    at: datetime.datetime
    ok: bool = True
    big: int = 0
    pair: tuple[str, int] = ("", 0)
    inner: Inner | None = None
    tags: list[str] = Field(default_factory=list)
    sensor_kind: str = Field(default="t", alias="sensor-kind")


def reading() -> Reading:
    return Reading.model_validate(
        {
            "sensor": "s-17",
            "count": 42,
            "total": math.nan,
            "at": datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            "big": -(2**90),
            "pair": ("p", 7),
            "inner": Inner(label="i", raw=b"\xff\x00"),
            "tags": ["a", "b"],
            "sensor-kind": "humidity",
        }
    )


def test_a_pydantic_model_is_rebuilt_with_its_type() -> None:
    value = reading()
    back = decode(encode(value), Reading)
    assert type(back) is Reading
    assert back.model_dump(exclude={"total"}) == value.model_dump(exclude={"total"})
    assert math.isnan(back.total)
    assert back.inner is not None
    assert back.inner.raw == b"\xff\x00"
    assert back.sensor_kind == "humidity"  # written by alias, read by alias


def test_a_pydantic_model_without_its_type_comes_back_as_a_dict() -> None:
    back = decode(encode(reading()))
    assert isinstance(back, dict)
    assert back["sensor"] == "s-17"
    assert back["big"] == -(2**90)
    assert back["inner"] == {"label": "i", "raw": b"\xff\x00"}
    assert back["sensor-kind"] == "humidity"


class Strict(BaseModel):
    model_config = ConfigDict(strict=True)

    pair: tuple[str, int]
    at: datetime.datetime


def test_a_strict_model_is_rebuilt_too() -> None:
    value = Strict(pair=("a", 1), at=datetime.datetime(2026, 1, 2, 3, 4, 5))
    assert decode(encode(value), Strict) == value


@dataclasses.dataclass
class Window:
    start_ms: int
    values: list[float]
    key: tuple[str, int]
    raw: bytes = b""
    inner: Inner | None = None


def test_a_dataclass_is_rebuilt_with_its_type() -> None:
    value = Window(1_764_000_000_000, [1.5, -0.0], ("k", 2), b"\xfe", Inner(label="x", raw=b"\x01"))
    back = decode(encode(value), Window)
    assert type(back) is Window
    assert back == value
    assert same(back.key, ("k", 2))
    assert decode(encode(value))["key"] == ["k", 2]  # without the type: a dict of plain values


def test_other_types_are_rebuilt_by_pydantic() -> None:
    naive = datetime.datetime(2026, 1, 2, 3, 4, 5)
    aware = naive.replace(tzinfo=UTC)
    ident = uuid.uuid4()
    assert decode(encode(naive), datetime.datetime) == naive
    assert decode(encode(aware), datetime.datetime) == aware
    assert decode(encode(ident), uuid.UUID) == ident
    assert decode(encode([Inner(label="a", raw=b"")]), list[Inner]) == [Inner(label="a", raw=b"")]
    assert decode(encode({"a": (1, "x")}), dict[str, tuple[int, str]]) == {"a": (1, "x")}
    assert decode(encode(5), int | None) == 5


@pytest.mark.parametrize(
    "value",
    [object(), lambda: 1, complex(1, 2), {"a": object()}, [1, {"b": object()}], {object(): 1}],
    ids=["object", "function", "complex", "nested", "deep", "key"],
)
def test_values_of_no_supported_kind_are_refused_clearly(value: Any) -> None:
    with pytest.raises(InvalidArgument, match="state values are None, bool, int") as caught:
        encode(value)
    assert isinstance(caught.value, ConfigurationError)
    assert isinstance(caught.value, ValueError)


def test_a_value_that_contains_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(InvalidArgument, match="cannot encode a state value of type list"):
        encode(loop)


@pytest.mark.parametrize(
    "data", [b"", b"\xc1", b"\x01\x02", b"\x92\x01", b"\xd4\x05\x00", b'{"json": 1}']
)
def test_bytes_the_codec_did_not_write_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(data)


def test_a_value_that_does_not_fit_the_type_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match="does not fit"):
        decode(encode({"sensor": "s"}), Reading)
    with pytest.raises(DecodeError, match="does not fit"):
        decode(encode("x"), int)


def test_a_type_pydantic_cannot_build_is_refused() -> None:
    class Opaque:
        pass

    with pytest.raises(InvalidArgument, match="cannot decode state values as"):
        decode(encode(1), Opaque)


# Keys


class Color(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


EQUAL_KEYS = [
    (1, 1.0),
    (1, True),
    (0, False),
    (0, -0.0),
    (0.0, -0.0),
    (2**70, float(2**70)),
    (1e300, int(1e300)),
    ("red", Color.RED),
    (3, Level.HIGH),
    (b"a", bytearray(b"a")),
    (b"a", memoryview(b"a")),
    (("page", 1), ("page", 1.0)),
    (("page", 1), ["page", 1]),
    (("a", ("b", 2)), ["a", ["b", 2.0]]),
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
    ({"z": {"y": 1, "x": 2}, 1: "i"}, {1.0: "i", "z": {"x": 2, "y": 1}}),
    ({i: str(i) for i in range(50)}, {i: str(i) for i in reversed(range(50))}),
]


@pytest.mark.parametrize(("a", "b"), EQUAL_KEYS, ids=[repr(a)[:30] for a, _ in EQUAL_KEYS])
def test_equal_keys_give_equal_bytes(a: Any, b: Any) -> None:
    assert a == b or isinstance(a, tuple)  # a list never equals a tuple: taken as one on purpose
    assert encode_key(a) == encode_key(b)


def test_dict_order_does_not_change_a_key() -> None:
    forward = {f"k{i}": i for i in range(20)}
    backward = dict(reversed(forward.items()))
    assert list(forward) != list(backward)
    assert encode_key(forward) == encode_key(backward)
    assert encode_key({"o": forward}) == encode_key({"o": backward})
    assert encode_key((forward, 1)) == encode_key((backward, 1))


def test_unequal_keys_give_different_bytes() -> None:
    keys = [
        None, 0, 1, -1, 2**64, -(2**64), 1.5, -1.5, math.inf, -math.inf, "", "1", "a", "A",
        b"", b"1", b"a", (), ("a",), (("a",),), ("a", 1), (1, "a"), ("a", "1"), ("a", b"1"),
        {}, {"a": 1}, {"a": "1"}, {1: "a"}, {"a": 1, "b": 2}, ("a", None), (None,),
    ]  # fmt: skip
    fields = [encode_key(k) for k in keys]
    assert len(set(fields)) == len(keys)


def test_key_bytes_are_pinned() -> None:
    """Stored state outlives the process: a changed encoding would orphan every stored key."""
    assert encode_key("page-42") == b"\xa7page-42"
    assert encode_key(123_456) == b"\xce\x00\x01\xe2\x40"
    assert encode_key(("page-42", 7)) == b"\x92\xa7page-42\x07"
    assert encode_key(1.5) == b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"
    assert encode_key(b"\x00") == b"\xc4\x01\x00"
    assert encode_key(None) == b"\xc0"
    assert encode_key({"b": 1, "a": 2}) == b"\x82\xa1a\x02\xa1b\x01"
    assert encode_key(2**64) == b"\xc7\x09\x01\x01" + bytes(8)


KEYS = [
    "page-42",
    "",
    7,
    -(2**70),
    2.5,
    True,
    b"\xff",
    None,
    ("page-42", 7),
    ("a", ("b", (1.5, None))),
    {"user": "u1", "region": ("eu", 3)},
    {("t", 1): "tuple key"},
]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k)[:30] for k in KEYS])
def test_a_decoded_key_encodes_to_the_same_field(key: Any) -> None:
    field = encode_key(key)
    assert encode_key(decode(field)) == field


def test_a_decoded_key_is_the_normal_form() -> None:
    assert same(decode(encode_key(("page", 1.0, True))), ["page", 1, 1])
    assert same(decode(encode_key(("page", 1.0)), tuple[str, int]), ("page", 1))
    assert same(decode(encode_key(-0.0)), 0)
    assert same(decode(encode_key(2.5)), 2.5)


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (math.nan, "nan"),
        (("a", math.nan), "nan"),
        ({"a": math.nan}, "nan"),
        ({1, 2}, "set"),
        (frozenset({1}), "frozenset"),
        (Inner(label="a", raw=b""), "pydantic model"),
        (Window(1, [], ("k", 1)), "dataclass"),
        (datetime.datetime(2026, 1, 1, tzinfo=UTC), "datetime"),
        (uuid.UUID(int=1), "UUID"),
        (object(), "object"),
        (("ok", object()), "object"),
        ({2**70: 1}, "beyond 64 bits"),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_keys_that_cannot_be_deterministic_are_refused(key: Any, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why) as caught:
        encode_key(key)
    assert "key by a field or a tuple of fields" in str(caught.value)


async def test_state_survives_a_redis_hash_byte_for_byte(
    rs_redis: aioredis.Redis, rs_namespace: str
) -> None:
    store = f"{rs_namespace}:state"
    entries = {
        ("page", 1): {"count": 12, "sum": 3.5, "last": "x"},
        b"\xff\x00": ALL_BYTES,
        2**70: [math.inf, -(2**70)],
        "model": reading(),
    }
    await rs_redis.hset(store, mapping={encode_key(k): encode(v) for k, v in entries.items()})
    assert same(decode(await rs_redis.hget(store, encode_key(("page", 1.0)))), entries["page", 1])
    assert decode(await rs_redis.hget(store, encode_key(bytearray(b"\xff\x00")))) == ALL_BYTES
    assert same(decode(await rs_redis.hget(store, encode_key(float(2**70)))), entries[2**70])
    model = decode(await rs_redis.hget(store, encode_key("model")), Reading)
    assert model.at == reading().at
    stored = await rs_redis.hgetall(store)
    assert sorted(map(decode, stored), key=repr) == sorted(
        [["page", 1], b"\xff\x00", 2**70, "model"], key=repr
    )
