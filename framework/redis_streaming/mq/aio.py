"""Small asyncio helpers shared by the long-running components."""

from __future__ import annotations

import asyncio

__all__ = ["cancel_and_wait", "wait_event"]


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


async def cancel_and_wait(task: asyncio.Task[None], retry_s: float = 0.5) -> None:
    """Cancel ``task`` and wait until it has ended.

    The cancel is repeated while the task runs on: on Python 3.11, ``asyncio.wait_for`` (which
    redis-py uses for socket timeouts) loses a cancellation that arrives as the awaited call
    completes, and a loop around it would then run for ever.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=retry_s)
