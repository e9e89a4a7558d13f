"""The wall clock a job reads: real time unless one is injected (``Job.run(clock=...)``).

The runtime reads wall time once per batch (the batch's ``now``: wall timers, processing-time
windows, state TTLs, the commit's ``now``) and once per idle read (whether a quiet partition's
watermark has moved on); a clock is an object with ``now_ms()``. Tests inject
:class:`~redis_streaming.testing.ManualClock` to make all of these deterministic.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """Wall time as the runtime sees it."""

    def now_ms(self) -> int:
        """The current time in epoch milliseconds."""
        ...


class SystemClock:
    """Real time: ``time.time()`` in epoch milliseconds."""

    __slots__ = ()

    def now_ms(self) -> int:
        """The current time in epoch milliseconds."""
        return int(time.time() * 1000)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
