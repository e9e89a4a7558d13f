"""The application of the high-availability tests: one listener that records what it handled."""

from __future__ import annotations

import time

from redis_streaming import Message
from redis_streaming_starter import listener

handled: dict[int, float] = {}
"""Each handled payload (a unique number) and when it was handled (``time.monotonic()``)."""


@listener("ticks", group="counter")
async def tick(n: int, message: Message) -> None:
    handled.setdefault(n, time.monotonic())
