"""Positions as fixed-width strings that sort bytewise in numeric order.

Lua compares positions byte by byte, so a number is written zero-padded to a fixed width:
``decimal(42) == "00000000000000000042"``; several numbers are concatenated, most significant
first (a timestamp, then a tie-break id).
"""

from __future__ import annotations

from redis_streaming.errors import InvalidArgument

__all__ = ["DECIMAL_WIDTH", "decimal", "hex_number", "parse_decimal", "parse_hex"]

DECIMAL_WIDTH = 20  # 2**64 - 1 has 20 digits


def decimal(n: int, width: int = DECIMAL_WIDTH) -> str:
    """``n`` (0 <= n < 10**width) as ``width`` zero-padded decimal digits."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0 or n >= 10**width:
        raise InvalidArgument(
            f"a position number must be an integer from 0 to 10**{width} - 1, got {n!r}"
        )
    return f"{n:0{width}d}"


def parse_decimal(text: str) -> int:
    """The number of a :func:`decimal` string."""
    return int(text, 10)


def hex_number(n: int, width: int = 16) -> str:
    """``n`` (0 <= n < 16**width) as ``width`` upper-case hex digits (a Postgres LSN: 16)."""
    if n < 0 or n >= 16**width:
        raise InvalidArgument(f"{n} does not fit {width} hex digits")
    return f"{n:0{width}X}"


def parse_hex(text: str) -> int:
    """The number of a :func:`hex_number` string."""
    return int(text, 16)
