"""Loads the state a batch needs in one round trip (none when the cache is warm)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis_streaming.runtime.commit import Committer
from redis_streaming.runtime.wallclock import SYSTEM_CLOCK, Clock
from redis_streaming.state.cache import ABSENT, StateCache
from redis_streaming.state.codec import encode_key

__all__ = ["StateLoader"]


class StateLoader:
    """Reads the record keys' state of every store of a stage that the cache lacks."""

    __slots__ = ("cache", "clock", "committer", "redis")

    def __init__(
        self, redis: Any, committer: Committer, cache: StateCache, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.redis = redis
        self.committer = committer
        self.cache = cache
        self.clock = clock

    async def load(self, stores: Iterable[str], record_keys: Iterable[str | None]) -> int:
        """Fill the cache for every (store, key); returns the number of keys read (0: no I/O).

        A key whose TTL has passed but which no commit has swept yet reads as absent."""
        fields = [encode_key(k) for k in record_keys]
        wanted: dict[str, list[bytes]] = {}
        for store in stores:
            missing = self.cache.missing((store, f) for f in fields)
            if missing:
                wanted[store] = [f for _, f in missing]
        if not wanted:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for store, keys in wanted.items():
            hash_key, ttl_key = self.committer.store_keys(store)
            pipe.hmget(hash_key, keys)
            pipe.zmscore(ttl_key, keys)
        replies = await pipe.execute()
        now = self.clock.now_ms()
        n = 0
        for i, (store, keys) in enumerate(wanted.items()):
            values, expiries = replies[2 * i], replies[2 * i + 1]
            for field, raw, expiry in zip(keys, values, expiries, strict=True):
                n += 1
                if raw is None or (expiry is not None and expiry <= now):
                    self.cache.put((store, field), ABSENT)
                else:
                    self.cache.put((store, field), raw, int(expiry) if expiry else None)
        return n
