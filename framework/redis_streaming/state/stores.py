"""State stores as a user function sees them: one value, map or list per record key.

A store is declared once per operator (:class:`StoreSpec`) and kept per input partition in one
Redis hash (field = the encoded record key, value = the encoded state). A function reads and
writes the state of the record it is handling through a view bound to that record's key; the
writes go to the batch's overlay (:class:`~redis_streaming.state.batch.BatchState`) and reach
Redis only in the batch's commit, all together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Literal, TypeVar

from redis_streaming._redis.names import validate_name
from redis_streaming.errors import InvalidArgument
from redis_streaming.state.batch import BatchState

__all__ = ["ListState", "MapState", "StoreKind", "StoreSpec", "ValueState", "ttl_ms"]

T = TypeVar("T")
StoreKind = Literal["value", "map", "list"]


def ttl_ms(ttl: float | timedelta | None) -> int | None:
    """A TTL given in seconds or as a ``timedelta``, in milliseconds (``None``: no expiry)."""
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if not seconds > 0:
        raise InvalidArgument(f"a state TTL must be positive, got {ttl!r}")
    return max(1, int(seconds * 1000))


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """One state store of a job: its name (unique in the job), kind and default TTL.

    ``ttl_ms``: a key not written for that long (wall clock) is removed, by the commits of the
    partition's task; ``None`` keeps keys until deleted.
    """

    name: str
    kind: StoreKind = "value"
    ttl_ms: int | None = None

    def __post_init__(self) -> None:
        validate_name(self.name, "state store")


class _View:
    __slots__ = ("_batch", "_key", "_spec")

    def __init__(self, batch: BatchState, spec: StoreSpec, key: bytes) -> None:
        self._batch = batch
        self._spec = spec
        self._key = key

    def _get(self) -> Any:
        return self._batch.get(self._spec.name, self._key)

    def _set(self, value: Any, ttl: float | timedelta | None = None) -> None:
        expiry = ttl_ms(ttl) if ttl is not None else self._spec.ttl_ms
        self._batch.set(self._spec.name, self._key, value, expiry)

    def clear(self) -> None:
        """Delete this key's state (a no-op when it has none)."""
        self._batch.delete(self._spec.name, self._key)


class ValueState(_View, Generic[T]):
    """The one value kept for the current record's key."""

    __slots__ = ()

    def get(self, default: T | None = None) -> T | None:
        """The value, or ``default`` when the key has none."""
        value = self._get()
        return default if value is None else value

    def set(self, value: T, *, ttl: float | timedelta | None = None) -> None:
        """Replace the value (``ttl`` overrides the store's TTL for this write)."""
        if value is None:
            raise InvalidArgument("cannot store None; call clear() to delete the value")
        self._set(value, ttl)


class MapState(_View):
    """A dict kept for the current record's key (stored as one value: keep it small)."""

    __slots__ = ()

    def _map(self) -> dict[Any, Any]:
        value = self._get()
        return dict(value) if value else {}

    def get(self, field: Any, default: Any = None) -> Any:
        """The value of ``field``, or ``default``."""
        return self._map().get(field, default)

    def put(self, field: Any, value: Any) -> None:
        """Set ``field`` to ``value``."""
        data = self._map()
        data[field] = value
        self._set(data)

    def remove(self, field: Any) -> None:
        """Remove ``field`` (a no-op when absent); the key's state goes when the map empties."""
        data = self._map()
        data.pop(field, None)
        if data:
            self._set(data)
        else:
            self.clear()

    def items(self) -> Iterator[tuple[Any, Any]]:
        """The map's entries."""
        return iter(self._map().items())


class ListState(_View):
    """A list kept for the current record's key (stored as one value: keep it small)."""

    __slots__ = ()

    def get(self) -> list[Any]:
        """A copy of the list (empty when the key has none)."""
        value = self._get()
        return list(value) if value else []

    def append(self, item: Any) -> None:
        """Append ``item``."""
        self._set([*self.get(), item])

    def set(self, items: list[Any]) -> None:
        """Replace the list; an empty list deletes the key's state."""
        if items:
            self._set(list(items))
        else:
            self.clear()
