"""Small asyncio helpers shared by the long-running components."""

from __future__ import annotations

import asyncio

__all__ = ["wait_event"]


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``event`` is set, at most ``timeout_s``; returns whether it is set.

    Uses ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11, ``wait_for``
    swallows a cancellation that arrives while the awaited event completes, which left stopping
    tasks running forever.
    """
    if not event.is_set() and timeout_s > 0:
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            pass
    return event.is_set()
