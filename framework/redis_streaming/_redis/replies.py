"""Reading Redis replies, which come as bytes (the framework's clients do not decode)."""

from __future__ import annotations

from typing import Any

__all__ = ["as_int", "as_text"]


def as_text(value: Any) -> str:
    """``value`` as text: bytes decoded as UTF-8, anything else through ``str``."""
    return value.decode() if isinstance(value, bytes) else str(value)


def as_int(value: Any, default: int = 0) -> int:
    """``value`` (bytes, text or a number) as an integer, or ``default`` when it is missing or
    not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
