"""The per-task write-back cache of committed state.

Only the holder of a partition's lease can commit to its state (the commit is fenced by the
lease), so while a task holds the lease, what it last committed or read is what Redis holds: it
can serve reads from memory. The cache is bounded (least recently used keys go first) and is
dropped whole when the lease is lost, a commit is fenced or its outcome is unknown.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

__all__ = ["ABSENT", "StateCache"]

StateKey = tuple[str, bytes]  # (store name, encoded record key)


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
"""What the cache holds for a key known to have no state (so it is not read again)."""


class StateCache:
    """Committed values, encoded, by ``(store, encoded key)``: ``ABSENT`` for a key with no
    state, and the wall-clock expiry (epoch ms) of values written with a TTL."""

    __slots__ = ("_expiry", "_values", "max_keys", "now_ms")

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        # Wall time (epoch ms) that expiries are judged by: the batch's, set by the task before
        # each batch (so a batch sees one time, whatever clock the job runs on).
        self.now_ms = int(time.time() * 1000)
        self._values: OrderedDict[StateKey, Any] = OrderedDict()
        self._expiry: dict[StateKey, int] = {}

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: StateKey) -> bool:
        return key in self._values

    def missing(self, keys: Iterable[StateKey]) -> list[StateKey]:
        """Those of ``keys`` the cache knows nothing about (to be read from Redis)."""
        values = self._values
        return [k for k in keys if k not in values]

    def get(self, key: StateKey) -> Any:
        """The committed value, ``ABSENT``, or raises ``KeyError`` when not loaded."""
        value = self._values[key]
        expiry = self._expiry.get(key)
        if expiry is not None and expiry <= self.now_ms:
            return ABSENT
        self._values.move_to_end(key)
        return value

    def put(self, key: StateKey, value: Any, expiry_ms: int | None = None) -> None:
        """Remember ``value`` (or ``ABSENT``) as committed for ``key``."""
        self._values[key] = value
        self._values.move_to_end(key)
        if expiry_ms is None:
            self._expiry.pop(key, None)
        else:
            self._expiry[key] = expiry_ms

    def trim(self) -> None:
        """Forget the least recently used keys beyond ``max_keys`` (between batches only: a
        batch's keys must stay loaded until its commit)."""
        excess = len(self._values) - self.max_keys
        for _ in range(max(0, excess)):
            key, _ = self._values.popitem(last=False)
            self._expiry.pop(key, None)

    def clear(self) -> None:
        """Forget everything (lease lost, commit fenced or of unknown outcome)."""
        self._values.clear()
        self._expiry.clear()
