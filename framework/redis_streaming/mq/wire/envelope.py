"""Binary-safe envelopes for messages parked in sorted sets (delayed sends, retries).

A ZSET member must be one string, and a payload may be arbitrary bytes, so an envelope is a run of
netstrings ``<len>:<bytes>,``: first a unique id (so two equal messages stay two members), then the
entry's field, value pairs. The Lua movers parse it with ``string.find``/``string.sub``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

__all__ = ["decode_envelope", "encode_envelope"]


def _bytes(value: bytes | str | int) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def encode_envelope(fields: Sequence[bytes | str | int], envelope_id: str | None = None) -> bytes:
    """Encode ``[field, value, ...]`` with a fresh unique id in front."""
    parts = [_bytes(envelope_id or uuid.uuid4().hex), *map(_bytes, fields)]
    return b"".join(b"%d:%s," % (len(p), p) for p in parts)


def decode_envelope(data: bytes) -> tuple[str, list[bytes]]:
    """Return ``(envelope_id, [field, value, ...])``; raises ``ValueError`` when malformed."""
    parts: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        colon = data.index(b":", pos)
        size = int(data[pos:colon])
        stop = colon + 1 + size
        if data[stop : stop + 1] != b",":
            raise ValueError("malformed envelope: missing ',' after a netstring")
        parts.append(data[colon + 1 : stop])
        pos = stop + 1
    if not parts:
        raise ValueError("empty envelope")
    return parts[0].decode(), parts[1:]
