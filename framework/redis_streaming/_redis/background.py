"""Small asyncio helpers shared by the long-running components."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from redis_streaming._redis.backoff import Backoff
from redis_streaming._redis.errors import is_connection_error

__all__ = ["BackgroundLoop", "cancel_and_wait", "wait_event"]


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


class BackgroundLoop:
    """One long-running task with a stop flag, shared by the movers and the housekeeper.

    Subclasses implement ``_run`` as ``while not self._stopping.is_set(): ...`` and sleep with
    ``wait_event(self._stopping, ...)``. ``stop`` sets the flag and cancels until the task has
    ended, so a cancellation lost on Python 3.11 cannot leave the loop running.
    ``async with loop:`` starts it and stops it on the way out, also when the block raises.
    """

    def __init__(self) -> None:
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_error: BaseException | None = None

    async def _repeat(
        self,
        what: str,
        step: Callable[[], Awaitable[float]],
        backoff: Backoff,
        log: logging.Logger,
    ) -> None:
        """Run ``step`` until stopped, sleeping the seconds it returns between runs. An error
        is kept in ``last_error``, logged (WARNING for a lost connection, ERROR otherwise) and
        retried after ``backoff``'s next delay; a success clears both."""
        while not self._stopping.is_set():
            try:
                wait = await step()
                backoff.reset()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = exc
                wait = backoff.next_delay()
                level = logging.WARNING if is_connection_error(exc) else logging.ERROR
                log.log(level, "%s: %s; retrying in %.2fs", what, exc, wait)
            await wait_event(self._stopping, wait)

    def _launch(self, name: str) -> None:
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=name)

    async def _run(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop the loop and wait until its task has ended."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    @property
    def running(self) -> bool:
        """True while the background task runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> Awaitable[None] | None:
        """Start the loop's task (idempotent). Each subclass implements it, as a plain method or
        a coroutine; ``async with`` awaits what it returns."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        """Start (see ``start``)."""
        started = self.start()
        if started is not None:
            await started
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop and wait until the task has ended (see ``stop``), also when the block raised."""
        await self.stop()
