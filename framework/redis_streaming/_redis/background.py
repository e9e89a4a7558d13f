"""Background loops, their stop, and the final writes that must outlive a cancellation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from types import TracebackType
from typing import Any, Self, TypeVar

from redis_streaming._redis.backoff import Backoff
from redis_streaming._redis.errors import is_connection_error

__all__ = [
    "BackgroundLoop",
    "FinalWrites",
    "OnError",
    "Prefixed",
    "Step",
    "cancel_and_wait",
    "log_retry",
    "supervise",
    "wait_event",
]

T = TypeVar("T")
Step = Callable[[], Awaitable[float | None]]
OnError = Callable[[Exception, Backoff], Awaitable[float]]

_log = logging.getLogger(__name__)
FINAL_WRITES_S = 5.0  # longest wait of a stop() for final writes its cancelled task left running


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``event`` is set, at most ``timeout_s``; returns whether it is set.

    Uses ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11, ``wait_for`` can lose a
    cancellation that arrives as the awaited event completes, ``asyncio.timeout`` cannot.
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
    completes, so one cancel does not guarantee that a loop around it ends.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=retry_s)


class Prefixed(logging.LoggerAdapter[logging.Logger]):
    """``logger`` with ``"<prefix>: "`` in front of every message: what a component is (a
    loop's name, a subscription's topic and group, a partition), so that its log calls pass
    only what they are about. Prefixes are made of names that the name rule keeps free of
    ``%``, so they never disturb a message's formatting."""

    def __init__(self, logger: logging.Logger, prefix: str) -> None:
        super().__init__(logger)
        self.prefix = prefix

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return f"{self.prefix}: {msg}", kwargs


def log_retry(log: Prefixed, exc: Exception, wait_s: float) -> None:
    """Log that a step failed with ``exc`` and runs again in ``wait_s``: at WARNING for a lost
    connection (Redis comes back by itself), at ERROR for anything else."""
    level = logging.WARNING if is_connection_error(exc) else logging.ERROR
    log.log(level, "%s; retrying in %.2fs", exc, wait_s, stacklevel=2)  # the caller's line


async def supervise(
    step: Step,
    backoff: Backoff,
    on_error: OnError,
    *,
    running: Callable[[], bool],
    wake: asyncio.Event,
) -> None:
    """The loop of every long-running component: run ``step`` while ``running()``.

    ``step`` returns the seconds to wait before the next step, and the backoff starts again from
    its first delay; or None to go on at once, leaving the backoff as it is (a step that only
    set up, or only waited). After an error, ``await on_error(exc, backoff)`` logs or records
    it and returns the seconds to wait (usually ``backoff.next_delay()``); it may raise, which
    ends the loop. Setting ``wake`` ends a wait at once. A cancellation ends the loop (it is not
    an ``Exception``, so no step needs ``except asyncio.CancelledError: raise``).
    """
    while running():
        try:
            wait = await step()
        except Exception as exc:
            wait = await on_error(exc, backoff)
        else:
            if wait is None:
                continue
            backoff.reset()
        await wait_event(wake, wait)


class FinalWrites:
    """Writes that complete even when their caller is cancelled (an acknowledgement, a retry
    schedule, a dead letter, a deregistration), kept until they end.

    :meth:`shield` runs a write in a task of its own: a cancelled caller ends at once, the write
    goes on. The owner's ``stop()``, which cancelled that caller, then awaits what is left with
    :meth:`wait`, so it returns once the writes are done (or after a bound, with a warning).
    """

    def __init__(self, owner: str) -> None:
        self._log = Prefixed(_log, owner)
        self._running: set[asyncio.Future[Any]] = set()

    async def shield(self, write: Awaitable[T]) -> T:
        """Await ``write`` shielded from cancellation; the write is kept until it ends."""
        task = asyncio.ensure_future(write)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    async def wait(self, timeout_s: float = FINAL_WRITES_S) -> None:
        """Wait up to ``timeout_s`` for the writes still running (their outcome is their
        caller's: an error was raised there, or logged); warn about any left after that."""
        if not self._running:
            return
        _, left = await asyncio.wait(set(self._running), timeout=timeout_s)
        if left:
            self._log.warning(
                "stopping with %d final write(s) still running after %.1fs (Redis is slow or "
                "unreachable); what they do not write stays pending and is delivered again",
                len(left),
                timeout_s,
            )


class Lifecycle:
    """``async with`` for a component with ``start()`` (a plain method or a coroutine) and
    ``async stop()``: the block runs between the two, and a block that raises still stops it."""

    def start(self) -> Awaitable[None] | None:
        """Start (each class implements it)."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop (each class implements it)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
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
        await self.stop()


class BackgroundLoop(Lifecycle):
    """One long-running task with a stop flag: the movers, the housekeeper, the registry's
    loops, the gauges, and a subscription's coordinator and partition workers.

    ``_run`` hands its step to :meth:`_repeat` (or :meth:`_supervise`, to choose what an error
    does), which keeps :attr:`last_error`. ``stop`` sets the flag and cancels until the task has
    ended, so a cancellation lost on Python 3.11 cannot leave the loop running; ``_end`` first
    lets the task end by itself within a grace period. ``async with loop:`` starts it and
    stops it on the way out, also when the block raises.
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

        prefixed = Prefixed(log, what)

        async def on_error(exc: Exception, backoff: Backoff) -> float:
            wait = backoff.next_delay()
            log_retry(prefixed, exc, wait)
            return wait

        await self._supervise(step, backoff, on_error)

    async def _supervise(
        self,
        step: Step,
        backoff: Backoff,
        on_error: OnError,
        *,
        running: Callable[[], bool] | None = None,
        wake: asyncio.Event | None = None,
    ) -> None:
        """:func:`supervise` until stopped (or while ``running()``), waits ended by the stop
        flag (or ``wake``). An error is kept in ``last_error``; a step that returns a wait
        clears it."""

        async def counted() -> float | None:
            wait = await step()
            if wait is not None:
                self.last_error = None
            return wait

        async def failed(exc: Exception, backoff: Backoff) -> float:
            self.last_error = exc
            return await on_error(exc, backoff)

        await supervise(
            counted,
            backoff,
            failed,
            running=self._active if running is None else running,
            wake=self._stopping if wake is None else wake,
        )

    def _active(self) -> bool:
        return not self._stopping.is_set()

    def _launch(self, name: str) -> None:
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=name)

    async def _run(self) -> None:
        raise NotImplementedError

    async def _end(self, grace_s: float | None, overrun: Callable[[], None] | None = None) -> bool:
        """Set the stop flag and let the task end by itself within ``grace_s`` (None: however
        long it takes); then call ``overrun`` and cancel it until it has ended. Returns whether
        it ended by itself."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return True
        if grace_s != 0 and not task.done():
            await asyncio.wait({task}, timeout=grace_s)
        if task.done():
            return True
        if overrun is not None:
            overrun()
        await cancel_and_wait(task)
        return False

    async def stop(self) -> None:
        """Stop the loop and wait until its task has ended."""
        await self._end(0)

    @property
    def running(self) -> bool:
        """True while the background task runs."""
        return self._task is not None and not self._task.done()
