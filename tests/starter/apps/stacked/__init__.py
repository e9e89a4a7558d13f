"""One function listening to two topics, and to one topic in two groups (ids by default)."""

from __future__ import annotations

from redis_streaming_starter import listener

received: list[tuple[str, str]] = []


@listener("alerts")
@listener("audit")
async def record(event: str) -> None:
    received.append(("record", event))


@listener("alerts", group="pager")
@listener("alerts", group="mailer")
async def notify(event: str) -> None:
    received.append(("notify", event))
