"""Records as operators see them, and their trip through topics: decoded once from an entry,
encoded once into an output.

Values on internal topics (repartitioning) travel as JSON like any payload; a pydantic model also
names its class in the header ``rs-type``, and the next stage rebuilds the model when that class
is loaded in the process (it is: the same job code runs there). Nothing is imported because of a
header.
"""

from __future__ import annotations

import math
import sys
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from redis_streaming.errors import DecodeError, PayloadTooLarge
from redis_streaming.mq.wire.codec import (
    BYTES,
    JSON,
    EntryFields,
    decode_payload,
    encode_headers,
    encode_payload,
    entry_args,
    parse_fields,
)

__all__ = [
    "SIDE_HEADER",
    "TYPE_HEADER",
    "Record",
    "ValueDecoder",
    "decode_record",
    "event_time",
    "output_fields",
]

TYPE_HEADER = "rs-type"
SIDE_HEADER = "rs-side"  # the input of a stream-stream join an internal entry came from


class Record:
    """One value flowing through a stage: its key (``None`` when unkeyed) and event time
    (epoch ms; the input entry's timestamp unless an operator changes it)."""

    __slots__ = ("key", "side", "ts", "value")

    def __init__(self, key: str | None, value: Any, ts: int, side: str | None = None) -> None:
        self.key = key
        self.value = value
        self.ts = ts
        self.side = side  # which input of a stream-stream join it came from ("L"/"R")

    def with_value(self, value: Any) -> Record:
        """The same key and time with another value."""
        return Record(self.key, value, self.ts)


@lru_cache(maxsize=256)
def _loaded_model(name: str) -> type[BaseModel] | None:
    module, _, qualname = name.partition(":")
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) and issubclass(obj, BaseModel) else None


class ValueDecoder:
    """Decodes entries into values of ``value_type`` (a pydantic model, ``dict``, ``str``,
    ``bytes``, any type pydantic validates, or ``None`` for what the payload holds)."""

    __slots__ = ("_adapter", "_dict", "_model", "value_type")

    def __init__(self, value_type: Any = None) -> None:
        self.value_type = value_type
        self._model = (
            value_type
            if isinstance(value_type, type) and issubclass(value_type, BaseModel)
            else None
        )
        self._adapter: TypeAdapter[Any] | None = (
            TypeAdapter(value_type) if value_type not in (None, Any) and not self._model else None
        )
        self._dict = value_type is dict  # a decoded JSON object is one already

    def decode(self, fields: EntryFields) -> Any:
        """The entry's value; raises :class:`DecodeError` when it is not one of ``value_type``."""
        try:
            if self._model is not None and fields.content_type == JSON:
                return self._model.model_validate_json(fields.raw)
            value = decode_payload(fields.raw, fields.content_type)
            if self._model is not None:
                return self._model.model_validate(value)
            if self._adapter is not None:
                if self._dict and type(value) is dict:
                    return value  # what validate_python would give: a dict of the same items
                return self._adapter.validate_python(value)
            type_name = fields.headers.get(TYPE_HEADER)
            if type_name is not None:
                model = _loaded_model(type_name)
                if model is not None:
                    return model.model_validate(value)
            return value
        except ValidationError as exc:
            raise DecodeError(
                f"payload is not a valid {getattr(self.value_type, '__name__', self.value_type)}: "
                f"{exc}"
            ) from exc


def output_fields(
    value: Any,
    key: str | None,
    ts: int,
    *,
    internal: bool,
    max_bytes: int,
    topic: str,
    side: str | None = None,
) -> list[Any]:
    """The XADD fields of one output; raises :class:`PayloadTooLarge` or
    :class:`~redis_streaming.InvalidArgument` when the value cannot be sent."""
    raw, content_type = encode_payload(value)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(topic, len(raw), max_bytes)
    names: dict[str, str] = {}
    if internal and isinstance(value, BaseModel) and content_type != BYTES:
        cls = type(value)
        names[TYPE_HEADER] = f"{cls.__module__}:{cls.__qualname__}"
    if side is not None:
        names[SIDE_HEADER] = side
    return entry_args(raw, content_type, key, encode_headers(names), ts)


def event_time(extract: Any, value: Any) -> int:
    """The event time ``extract`` gives for ``value``, in epoch ms; raises
    :class:`DecodeError` when it fails or is not a finite number."""
    try:
        ts = extract(value)
    except Exception as exc:
        raise DecodeError(
            f"the event time could not be read: the timestamp extractor raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if type(ts) is int:  # the common case, checked first
        return ts
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise DecodeError(
            f"the event time must be a number (epoch milliseconds), the extractor gave {ts!r}"
        )
    return int(ts)


def decode_record(
    fields: dict[bytes, bytes], decoder: ValueDecoder, timestamp: Any = None
) -> Record:
    """The record of a stream entry's fields: its key, value (as ``decoder`` types it), event
    time (the entry's ``ts``, or what ``timestamp`` extracts from the value) and, for an entry
    of a join's internal topic, its side; raises :class:`DecodeError` when any is unusable."""
    parsed = parse_fields(fields)
    value = decoder.decode(parsed)
    ts = parsed.ts if timestamp is None else event_time(timestamp, value)
    side = parsed.headers.get(SIDE_HEADER) if parsed.headers else None
    return Record(parsed.key, value, ts, side)
