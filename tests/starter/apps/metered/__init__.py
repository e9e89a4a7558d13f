"""Listeners whose outcome the payload picks: ok, fail on the first attempt, or dead-letter."""

from __future__ import annotations

from typing import Any

from redis_streaming import DeadLetter, Message
from redis_streaming_starter import listener

handled: list[int] = []


@listener("metered", group="meters", id="meter")
async def meter(job: dict[str, Any], message: Message) -> None:
    if job["mode"] == "dead":
        raise DeadLetter("refused by the test")
    if job["mode"] == "retry_once" and message.attempt == 1:
        raise RuntimeError("first attempt fails")
    handled.append(job["n"])
