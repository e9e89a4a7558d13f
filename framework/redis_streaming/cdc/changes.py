"""Change messages: the JSON value CDC appends for one row change, and column value conversion.

A change is ``{"op", "table", "key", "before", "after", "lsn", "commit_ts", "xid"}``: ``op`` one
of ``snapshot``, ``insert``, ``update``, ``delete``, ``truncate``; ``table`` ``schema.table``;
``key`` the primary key columns; ``before``/``after`` column -> value dicts (None when absent;
``before`` carries the replica identity: the key columns, or every column with ``REPLICA
IDENTITY FULL``); ``lsn`` the transaction's commit LSN (``X/Y``, None in the snapshot);
``commit_ts`` epoch ms. Updates whose unchanged TOASTed values were not sent list those columns
in ``unchanged``. The message key is the primary key value (composite keys: a JSON array).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pydantic_core

from redis_streaming.cdc.pgoutput import UNCHANGED

__all__ = ["ConversionError", "convert", "format_lsn", "message_key", "row_dict"]

_BOOL, _INT = 16, (20, 21, 23, 26)
_FLOAT = (700, 701)
_JSON = (114, 3802)


class ConversionError(ValueError):
    """A column value could not be converted (the row goes to the dead letters)."""


def format_lsn(lsn: int) -> str:
    """An LSN as PostgreSQL writes it: ``16/B374D848``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def convert(text: str | None, type_oid: int, typed: bool) -> Any:
    """A column's text value, as a Python value when ``typed``: booleans, integers, floats
    (``NaN`` and infinities stay text), json/jsonb parsed; everything else (numeric, dates,
    text, ...) stays text, exact."""
    if text is None or not typed:
        return text
    try:
        if type_oid == _BOOL:
            return text in ("t", "true")  # pgoutput sends t/f, a ::text cast true/false
        if type_oid in _INT:
            return int(text)
        if type_oid in _FLOAT:
            value = float(text)
            return value if value == value and abs(value) != float("inf") else text
        if type_oid in _JSON:
            return json.loads(text)
    except ValueError as exc:
        raise ConversionError(f"value {text[:100]!r} of type oid {type_oid}: {exc}") from exc
    return text


def row_dict(
    columns: Sequence[str],
    oids: Sequence[int],
    values: Sequence[Any],
    typed: bool,
    only: frozenset[str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """``(column -> value, unchanged TOASTed columns)``, limited to ``only`` when given."""
    row: dict[str, Any] = {}
    unchanged = []
    for name, oid, value in zip(columns, oids, values, strict=True):
        if only is not None and name not in only:
            continue
        if value is UNCHANGED:
            unchanged.append(name)
        else:
            row[name] = convert(value, oid, typed)
    return row, unchanged


def message_key(primary_key: Sequence[str], row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The message key (the one key value as text; a JSON array of several) and the key dict."""
    key = {name: row.get(name) for name in primary_key}
    if len(primary_key) == 1:
        value = key[primary_key[0]]
        return (value if isinstance(value, str) else json.dumps(value)), key
    return pydantic_core.to_json(list(key.values())).decode(), key
