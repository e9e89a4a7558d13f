"""The delayed-message mover: appends producer-delayed messages to their streams when due."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from redis_streaming.mq.aio import BackgroundLoop
from redis_streaming.mq.backoff import Backoff
from redis_streaming.mq.keys import Keys, validate_name
from redis_streaming.mq.lua import LuaScript
from redis_streaming.mq.redis_errors import is_noscript
from redis_streaming.mq.topics import TopicMeta, TopicStore
from redis_streaming.options import MQOptions

__all__ = ["DelayedMover"]

log = logging.getLogger(__name__)
_MOVE = LuaScript("move_delayed")


class DelayedMover(BackgroundLoop):
    """Moves due messages from ``rs:delayed:{T:i}`` into ``rs:stream:{T:i}``.

    Each move is one Lua call that appends and removes atomically, so any number of movers (in
    one process or many) may run at once without duplicating a message. A pass covers every
    partition of the given topics (all topics when ``topics`` is ``None``); the mover then sleeps
    until the earliest scheduled message is due, at most ``mq.delayed_interval_ms``. Redis errors
    are logged and retried with capped exponential backoff; the mover never dies of them.
    """

    def __init__(
        self, redis: Any, options: MQOptions | None = None, topics: Iterable[str] | None = None
    ) -> None:
        super().__init__()
        self.redis = redis
        self.options = options or MQOptions()
        self.keys = Keys(self.options.namespace)
        self.store = TopicStore(redis, self.options)
        self.topics = None if topics is None else [validate_name(t) for t in topics]
        self.moved = 0
        self.last_error: BaseException | None = None

    async def start(self) -> None:
        """Start moving in a background task (idempotent). ``stop()`` ends it; a move in
        progress completes in Redis (it is one script)."""
        self._launch("redis-streaming-delayed-mover")

    async def _metas(self) -> list[TopicMeta]:
        names = self.topics if self.topics is not None else await self.store.names()
        metas = []
        for name in names:
            meta = await self.store.get(name)
            if meta is not None:
                metas.append(meta)
        return metas

    async def move_once(self) -> tuple[int, float]:
        """Run one pass now; returns ``(messages moved, seconds until the next is due)``."""
        metas = await self._metas()
        interval = self.options.delayed_interval_ms / 1000
        if not metas:
            return 0, interval
        pipe = self.redis.pipeline(transaction=False)
        for meta in metas:
            maxlen = meta.retention_max_len
            for i in range(meta.partitions):
                keys = [self.keys.delayed(meta.name, i), self.keys.stream(meta.name, i)]
                _MOVE.queue(pipe, keys, [self.options.delayed_batch, maxlen])
        try:
            replies = await pipe.execute()
        except Exception as exc:
            if not is_noscript(exc):
                raise
            await _MOVE.load(self.redis)  # the server lost its script cache (restart)
            return await self.move_once()
        moved = sum(int(r[0]) for r in replies)
        due = [int(r[1]) for r in replies if int(r[1]) >= 0]
        wait = interval
        if moved and any(int(r[0]) >= self.options.delayed_batch for r in replies):
            wait = 0.0  # a partition had more due than one call moves
        elif due:
            wait = min(interval, max(0.0, (min(due) - time.time() * 1000) / 1000))
        self.moved += moved
        return moved, wait

    async def _run(self) -> None:
        async def step() -> float:
            _, wait = await self.move_once()
            return wait

        await self._repeat("delayed mover", step, Backoff(), log)
