"""Capped exponential backoff with jitter for loops that must survive Redis outages."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays of ``initial_s * 2**n``, capped at ``max_s``, each drawn in ``[d/2, d]``."""

    __slots__ = ("_attempt", "initial_s", "max_s")

    def __init__(self, initial_s: float = 0.1, max_s: float = 5.0) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._attempt = 0

    def next_delay(self) -> float:
        """The next delay in seconds; each call doubles the base until the cap."""
        base = min(self.max_s, self.initial_s * (2 ** min(self._attempt, 30)))
        self._attempt += 1
        return random.uniform(base / 2, base)

    def reset(self) -> None:
        """Start again from ``initial_s`` (call after a success)."""
        self._attempt = 0

    @property
    def failures(self) -> int:
        """Consecutive failures since the last reset."""
        return self._attempt
