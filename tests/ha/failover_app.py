"""The listener of the failover tests: records the number of every message it handles."""

from __future__ import annotations

from typing import Any

from redis_streaming_starter import listener

handled: set[int] = set()


@listener("ha-orders", group="ha")
async def record(order: dict[str, Any]) -> None:
    handled.add(int(order["n"]))
