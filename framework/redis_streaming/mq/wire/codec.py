"""The wire format of a stream entry (docs/design.md, "Wire format").

Fields are plain UTF-8 (the payload may be raw bytes), readable with ``redis-cli XRANGE`` and from
any language: ``payload``, ``content_type``, ``key``, ``headers`` (JSON object), ``ts`` (epoch ms),
``attempt`` (absent or below 1 means 1) and ``origin_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic_core
from pydantic import BaseModel

from redis_streaming.errors import DecodeError, InvalidArgument

__all__ = [
    "BYTES",
    "JSON",
    "TEXT",
    "EntryFields",
    "decode_payload",
    "entry_args",
    "encode_headers",
    "encode_payload",
    "parse_fields",
]

JSON = "application/json"
TEXT = "text/plain"
BYTES = "application/octet-stream"
_CONTENT_TYPES = frozenset((JSON, TEXT, BYTES))


def encode_payload(payload: Any) -> tuple[bytes, str]:
    """Encode a payload to bytes and its content type.

    ``bytes``-like values travel as ``application/octet-stream``, ``str`` as ``text/plain``;
    pydantic models, dicts, lists, numbers, booleans, ``None`` (and dataclasses, datetimes, UUIDs
    inside them) as ``application/json``.
    """
    if isinstance(payload, bytes):
        return payload, BYTES
    if isinstance(payload, str):
        return payload.encode(), TEXT
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload), BYTES
    try:
        if isinstance(payload, BaseModel):
            return payload.__pydantic_serializer__.to_json(payload), JSON
        return pydantic_core.to_json(payload), JSON
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidArgument(
            f"cannot encode a payload of type {type(payload).__name__}: {exc}. Send a pydantic "
            "model, dict, list, number, str or bytes (encode other objects yourself)"
        ) from exc


def decode_payload(raw: bytes, content_type: str) -> Any:
    """Decode payload bytes by content type; raises :class:`DecodeError` when they are invalid."""
    if content_type == JSON:
        try:
            return pydantic_core.from_json(raw)
        except ValueError as exc:
            raise DecodeError(f"payload is not valid JSON: {exc}") from exc
    if content_type == TEXT:
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise DecodeError(f"text/plain payload is not valid UTF-8: {exc}") from exc
    if content_type == BYTES:
        return raw
    raise DecodeError(f"unknown content_type {content_type!r}")


def encode_headers(headers: Mapping[str, str] | None) -> bytes | None:
    """Validate and encode headers as a JSON object of string to string (``None`` if empty)."""
    if not headers:
        return None
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidArgument(
                f"header {name!r}: {value!r} is not a string pair; headers map str to str "
                "(convert numbers and other values with str())"
            )
    return pydantic_core.to_json(headers)


def entry_args(
    raw: bytes,
    content_type: str,
    key: str | None,
    headers: bytes | None,
    ts_ms: int,
    attempt: int = 1,
    origin_id: str | None = None,
) -> list[bytes | str | int]:
    """The fields of one stream entry as a flat ``[name, value, ...]`` list, ready for XADD."""
    args: list[bytes | str | int] = ["payload", raw, "content_type", content_type]
    if key is not None:
        args += ("key", key)
    if headers is not None:
        args += ("headers", headers)
    args += ("ts", ts_ms)
    if attempt != 1:
        args += ("attempt", attempt)
    if origin_id is not None:
        args += ("origin_id", origin_id)
    return args


class EntryFields:
    """The parsed fields of one stream entry (payload not yet decoded)."""

    __slots__ = ("attempt", "content_type", "headers", "key", "origin_id", "raw", "ts")

    def __init__(
        self,
        raw: bytes,
        content_type: str,
        key: str | None,
        headers: dict[str, str],
        ts: int,
        attempt: int,
        origin_id: str | None,
    ) -> None:
        self.raw = raw
        self.content_type = content_type
        self.key = key
        self.headers = headers
        self.ts = ts
        self.attempt = attempt
        self.origin_id = origin_id


def _text(value: bytes | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise DecodeError(f"field {name!r} is not valid UTF-8") from exc


def parse_fields(fields: Mapping[bytes, bytes]) -> EntryFields:
    """Parse the raw field map of a stream entry; raises :class:`DecodeError` when malformed.

    Entries written by other tools are accepted; a missing ``content_type`` is taken as
    ``application/octet-stream``, and an ``attempt`` below 1 as 1.
    """
    raw = fields.get(b"payload")
    if raw is None:
        raise DecodeError("entry has no 'payload' field")
    content_type = _text(fields.get(b"content_type"), "content_type") or BYTES
    if content_type not in _CONTENT_TYPES:
        raise DecodeError(f"unknown content_type {content_type!r}")
    headers: dict[str, str] = {}
    raw_headers = fields.get(b"headers")
    if raw_headers:
        try:
            parsed = pydantic_core.from_json(raw_headers)
        except ValueError as exc:
            raise DecodeError(f"headers are not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise DecodeError("headers must be a JSON object of string to string")
        headers = parsed
    try:
        ts = int(fields.get(b"ts") or 0)
        # below 1 counts as 1: a raw entry's attempt cannot buy retries past max_attempts
        attempt = max(1, int(fields.get(b"attempt") or 1))
    except ValueError as exc:
        raise DecodeError(f"'ts' or 'attempt' is not an integer: {exc}") from exc
    return EntryFields(
        raw,
        content_type,
        _text(fields.get(b"key"), "key"),
        headers,
        ts,
        attempt,
        _text(fields.get(b"origin_id"), "origin_id"),
    )
