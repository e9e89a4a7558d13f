"""The state changes of one batch: an overlay on the committed state, with savepoints.

Functions write into the overlay; nothing reaches Redis until the batch commits. A savepoint
taken before each record lets the task undo exactly that record's writes when its function
raises (the record is dead-lettered and the rest of the batch commits).

Values are kept encoded (:mod:`redis_streaming.state.codec`), in the overlay as in the cache:
every read decodes a fresh object, so a function that changes a state object in place and then
raises, or a batch that runs again, never sees its own half-made changes; and a value that
cannot be stored fails the write of the record that made it, not the batch's commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from redis_streaming.state.cache import ABSENT, StateCache, StateKey
from redis_streaming.state.codec import decode, encode

__all__ = ["BatchState", "Write"]

_MISSING = object()


class Write:
    """One key's pending change: ``value``, the encoded value (``ABSENT`` deletes), and its
    TTL in ms."""

    __slots__ = ("ttl_ms", "value")

    def __init__(self, value: Any, ttl_ms: int | None) -> None:
        self.value = value
        self.ttl_ms = ttl_ms


class BatchState:
    """The overlay of one batch over ``cache`` (which must hold every key the batch reads)."""

    __slots__ = ("_journal", "cache", "writes")

    def __init__(self, cache: StateCache) -> None:
        self.cache = cache
        self.writes: dict[StateKey, Write] = {}
        self._journal: list[tuple[StateKey, Any]] = []

    def get(self, store: str, key: bytes) -> Any:
        """The key's value as this batch sees it, ``None`` when it has none."""
        k = (store, key)
        write = self.writes.get(k)
        raw = write.value if write is not None else self.cache.get(k)
        return None if raw is ABSENT else decode(raw)

    def set(self, store: str, key: bytes, value: Any, ttl_ms: int | None = None) -> None:
        """Write ``value`` (``ABSENT`` deletes) for ``key`` in ``store``; raises
        :class:`~redis_streaming.InvalidArgument` for a value the codec cannot store."""
        raw = value if value is ABSENT else encode(value)
        k = (store, key)
        self._journal.append((k, self.writes.get(k, _MISSING)))
        self.writes[k] = Write(raw, ttl_ms)

    def delete(self, store: str, key: bytes) -> None:
        """Delete ``key``'s state in ``store``."""
        self.set(store, key, ABSENT)

    def savepoint(self) -> int:
        """A mark to :meth:`rollback` to."""
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        """Undo every write made since ``mark``."""
        journal = self._journal
        while len(journal) > mark:
            k, previous = journal.pop()
            if previous is _MISSING:
                del self.writes[k]
            else:
                self.writes[k] = previous

    def reset(self) -> None:
        """Undo every write of the batch (it runs again)."""
        self.writes.clear()
        self._journal.clear()

    def committed(self) -> None:
        """The batch committed: its writes are now the cached committed state (TTLs from the
        batch's wall time, the cache's ``now_ms``)."""
        now = self.cache.now_ms
        for k, write in self.writes.items():
            expiry = now + write.ttl_ms if write.ttl_ms is not None else None
            self.cache.put(k, write.value, None if write.value is ABSENT else expiry)
        self.reset()
        self.cache.trim()

    def by_store(self) -> Iterator[tuple[str, list[tuple[bytes, Write]]]]:
        """The batch's writes grouped by store."""
        groups: dict[str, list[tuple[bytes, Write]]] = {}
        for (store, key), write in self.writes.items():
            groups.setdefault(store, []).append((key, write))
        return iter(groups.items())
