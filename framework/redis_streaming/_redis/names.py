"""The one rule for the names that end up in Redis keys: topics, groups, consumers, namespaces
and services (``[A-Za-z0-9._-]{1,200}``), checked before any key is built."""

from __future__ import annotations

import re

from redis_streaming.errors import InvalidName

__all__ = ["NAME", "NAME_PATTERN", "validate_name"]

NAME_PATTERN = r"[A-Za-z0-9._-]{1,200}"
NAME = re.compile(NAME_PATTERN)


def validate_name(value: object, kind: str = "topic") -> str:
    """Return ``value`` if it is a valid topic, group, consumer or namespace name.

    Raises :class:`~redis_streaming.errors.InvalidName` naming the offending value otherwise.
    """
    if isinstance(value, str) and NAME.fullmatch(value):
        return value
    raise InvalidName(
        f"invalid {kind} name {value!r}: use 1 to 200 characters from A-Z, a-z, 0-9, '.', '_' "
        "and '-' (no spaces, colons or braces)"
    )
