"""Version histories of a table key, for as-of lookups: a list of ``[ts, value]`` sorted by
event time, bounded to the newest ``limit`` versions; a tombstone is a version whose value is
``None`` (the key did not exist from then on)."""

from __future__ import annotations

import bisect
from typing import Any

__all__ = ["as_of", "put_version"]


def put_version(
    history: list[list[Any]] | None, ts: int, value: Any, limit: int
) -> list[list[Any]]:
    """``history`` with ``value`` as of ``ts`` (a later write at the same ``ts`` replaces the
    earlier one), trimmed to the newest ``limit`` versions."""
    versions = list(history or [])
    times = [v[0] for v in versions]
    i = bisect.bisect_left(times, ts)
    if i < len(versions) and versions[i][0] == ts:
        versions[i] = [ts, value]
    else:
        versions.insert(i, [ts, value])
    return versions[-limit:]


def as_of(history: list[list[Any]] | None, ts: int) -> Any:
    """The value as of ``ts``: the newest version at or before it (``None``: no such version,
    or a tombstone)."""
    if not history:
        return None
    i = bisect.bisect_right([v[0] for v in history], ts)
    return history[i - 1][1] if i else None
