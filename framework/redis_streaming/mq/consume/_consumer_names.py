"""Deleting consumer names from a group, in one atomic step with the check that they hold nothing.

``XGROUP DELCONSUMER`` drops the pending entries of the name it deletes. A check with
``XINFO CONSUMERS`` followed by a separate delete therefore loses any entry delivered to that name
in between (a former owner's read still in flight, queued behind ``CLIENT PAUSE``, or re-sent by
redis-py after a dropped connection): it is then pending nowhere and never read again. The script
checks and deletes in one step, and a read that reaches the server after the delete creates the
name again with its entries pending, to be claimed as stragglers (Redis 7.0 and Valkey do so also
for a read that was blocked when its name was deleted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis_streaming.mq.scripts import script

__all__ = ["delete_consumer_names"]

_DELETE = script("delete_consumers")


async def delete_consumer_names(
    redis: Any, key: str, group: str, names: Sequence[str], *, min_idle_ms: int
) -> int:
    """Delete those of ``names`` from ``group`` on stream ``key`` that have no pending entry and
    whose ``XINFO CONSUMERS`` idle time is at least ``min_idle_ms``, checked and deleted in one
    atomic step. Returns how many were deleted (0 when the stream or group does not exist)."""
    if not names:
        return 0
    return int(await _DELETE(redis, [key], [group, min_idle_ms, *names]))
