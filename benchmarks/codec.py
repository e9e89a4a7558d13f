"""Encode and decode cost and encoded size of the state codec's candidates, on state-like values.

  .venv/bin/python benchmarks/codec.py [--number N] [--rounds R]

Candidates: stdlib ``json`` (the floor), ``orjson``, ``msgspec`` (JSON and MessagePack),
``pydantic_core`` (``to_json`` / ``from_json``, models through their own serializer and
``model_validate_json``), ``ormsgpack``, and ``redis_streaming.state.codec`` as built. Each is used
the way its documentation suggests for these values: a pydantic model is dumped with
``model_dump`` (or serialized by the library where it can) and rebuilt with ``model_validate``;
the codec is called with ``type_`` for the model. A candidate that is not installed is skipped
(``pip install orjson msgspec ormsgpack`` to compare them all).

Each round times ``N`` calls of every (case, candidate, operation) with the garbage collector
off, rotating the order of the candidates from round to round; the table shows the median of the
rounds, in microseconds per call (keys go through ``encode_key`` for the codec). Then whether
each candidate keeps exactly, without a type, what the codec promises (raw bytes, NaN, an int
beyond 64 bits, an int dict key; a tuple comes back a list from every one). Last, the codec
against every other candidate: their summed encode + decode time over the value cases (and over
the key cases) divided by the codec's (the speed-up: above 1 the codec is faster), and the
codec's summed size divided by theirs.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic_core
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).parent))
from _common import parser as make_parser


class Reading(BaseModel):
    """A pydantic model with 5 fields, as a keyed state value might be."""

    sensor: str
    count: int
    total: float
    last_ms: int
    ok: bool


VALUES: dict[str, Any] = {
    "int counter": 12_345,
    "small dict": {"count": 12, "sum": 3.5, "last": "x"},
    "model (5 fields)": Reading(
        sensor="s-17", count=42, total=1234.5, last_ms=1764000000000, ok=True
    ),
    "20 floats": [i * 1.37 + 0.01 for i in range(20)],
    "1 KB str": "lorem ipsum dolor sit amet, " * 36 + "consectetur",
}
KEYS: dict[str, Any] = {
    "key: short str": "page-42",
    "key: int": 123_456,
    "key: (str, int)": ("page-42", 7),
}
# What the codec promises to round-trip exactly that plain JSON does not.
TRICKY: dict[str, Any] = {
    "bytes": b"\x00\xff\xfe raw",
    "NaN": math.nan,
    "2**70": 2**70,
    "int dict key": {1: "a"},
}


@dataclasses.dataclass
class Candidate:
    name: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes, type[BaseModel] | None], Any]
    encode_key: Callable[[Any], bytes] | None = None


def _dump(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump()
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _rebuild(plain: Any, type_: type[BaseModel] | None) -> Any:
    return plain if type_ is None else type_.model_validate(plain)


def candidates() -> tuple[list[Candidate], list[str]]:
    stdlib = json.JSONEncoder(separators=(",", ":"), default=_dump)
    out = [
        Candidate(
            "json (stdlib)",
            lambda v: stdlib.encode(v).encode(),
            lambda b, t: _rebuild(json.loads(b), t),
        ),
        Candidate(
            "pydantic_core",
            lambda v: (
                v.__pydantic_serializer__.to_json(v)
                if isinstance(v, BaseModel)
                else pydantic_core.to_json(v)
            ),
            lambda b, t: pydantic_core.from_json(b) if t is None else t.model_validate_json(b),
        ),
    ]
    missing = []
    try:
        orjson = importlib.import_module("orjson")
        out.append(
            Candidate(
                "orjson",
                lambda v: orjson.dumps(v, default=_dump),
                lambda b, t: _rebuild(orjson.loads(b), t),
            )
        )
    except ImportError:
        missing.append("orjson")
    try:
        msgspec = importlib.import_module("msgspec")
        jenc, jdec = msgspec.json.Encoder(enc_hook=_dump), msgspec.json.Decoder()
        menc, mdec = msgspec.msgpack.Encoder(enc_hook=_dump), msgspec.msgpack.Decoder()
        out.append(Candidate("msgspec json", jenc.encode, lambda b, t: _rebuild(jdec.decode(b), t)))
        out.append(
            Candidate("msgspec msgpack", menc.encode, lambda b, t: _rebuild(mdec.decode(b), t))
        )
    except ImportError:
        missing.append("msgspec")
    try:
        ormsgpack = importlib.import_module("ormsgpack")
        option = ormsgpack.OPT_SERIALIZE_PYDANTIC | ormsgpack.OPT_NON_STR_KEYS
        out.append(
            Candidate(
                "ormsgpack",
                lambda v: ormsgpack.packb(v, option=option),
                lambda b, t: _rebuild(ormsgpack.unpackb(b, option=ormsgpack.OPT_NON_STR_KEYS), t),
            )
        )
    except ImportError:
        missing.append("ormsgpack")
    try:
        codec = importlib.import_module("redis_streaming.state.codec")
        out.append(Candidate("state.codec", codec.encode, codec.decode, codec.encode_key))
    except ImportError:
        missing.append("redis_streaming.state.codec")
    return out, missing


def per_call_us(fn: Callable[[Any], Any], arg: Any, number: int) -> float:
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(number):
            fn(arg)
        return (time.perf_counter_ns() - start) / number / 1000
    finally:
        gc.enable()


def keeps(c: Candidate, value: Any) -> bool:
    try:
        back = c.decode(c.encode(value), None)
    except Exception:
        return False
    if isinstance(value, float) and math.isnan(value):
        return isinstance(back, float) and math.isnan(back)
    return type(back) is type(value) and bool(back == value)


def main() -> None:
    args = make_parser(__doc__)
    args.add_argument("--number", type=int, default=5000, help="calls per timing (default 5000)")
    args.add_argument("--rounds", type=int, default=9, help="rounds, median taken (default 9)")
    opts = args.parse_args()
    cands, missing = candidates()
    if missing:
        print(f"not measured (not installed): {', '.join(missing)}\n")

    # (case, candidate) -> ([encode µs], [decode µs], size)
    enc: dict[tuple[str, str], list[float]] = {}
    dec: dict[tuple[str, str], list[float]] = {}
    size: dict[tuple[str, str], int] = {}
    cases = {**VALUES, **KEYS}
    for r in range(opts.rounds):
        order = cands[r % len(cands) :] + cands[: r % len(cands)]
        for case, value in cases.items():
            is_key = case in KEYS
            type_ = type(value) if isinstance(value, BaseModel) else None
            for c in order:
                encoder = c.encode_key if (is_key and c.encode_key) else c.encode
                data = encoder(value)
                size[case, c.name] = len(data)
                enc.setdefault((case, c.name), []).append(per_call_us(encoder, value, opts.number))
                dec.setdefault((case, c.name), []).append(
                    per_call_us(lambda b, d=c.decode, t=type_: d(b, t), data, opts.number)
                )

    med_enc = {k: statistics.median(v) for k, v in enc.items()}
    med_dec = {k: statistics.median(v) for k, v in dec.items()}
    print(f"median of {opts.rounds} rounds of {opts.number} calls; µs per call; size in bytes")
    print(f"{'case':<18} {'candidate':<16} {'encode':>8} {'decode':>8} {'bytes':>6}")
    for case in cases:
        for c in cands:
            k = (case, c.name)
            print(f"{case:<18} {c.name:<16} {med_enc[k]:>8.2f} {med_dec[k]:>8.2f} {size[k]:>6}")
        print()

    print("exact round trip (without a type):")
    print(f"{'candidate':<16} " + " ".join(f"{t:>12}" for t in TRICKY))
    for c in cands:
        marks = ["yes" if keeps(c, v) else "no" for v in TRICKY.values()]
        print(f"{c.name:<16} " + " ".join(f"{m:>12}" for m in marks))
    print()

    chosen = next((c for c in cands if c.name == "state.codec"), None)
    if chosen is None:
        return
    for label, group in (("values", VALUES), ("keys", KEYS)):
        mine = sum(med_enc[case, chosen.name] + med_dec[case, chosen.name] for case in group)
        mine_size = sum(size[case, chosen.name] for case in group)
        print(f"state.codec on the {label}: {mine:.2f} µs encode + decode, {mine_size} bytes")
        for c in cands:
            if c is chosen:
                continue
            theirs = sum(med_enc[case, c.name] + med_dec[case, c.name] for case in group)
            theirs_size = sum(size[case, c.name] for case in group)
            print(
                f"  vs {c.name:<16} {theirs:>6.2f} µs: speed-up {theirs / mine:>5.2f}x   "
                f"{theirs_size:>5} bytes: size {mine_size / theirs_size:.2f}x"
            )


if __name__ == "__main__":
    main()
