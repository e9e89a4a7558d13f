"""The delayed-message mover: appends producer-delayed messages to their streams when due."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from redis_streaming._redis.background import BackgroundLoop
from redis_streaming._redis.backoff import Backoff
from redis_streaming.cluster import is_cluster
from redis_streaming.mq.keys import Keys, validate_name
from redis_streaming.mq.options import MQOptions
from redis_streaming.mq.scripts import script
from redis_streaming.mq.topics import TopicMeta, TopicStore

__all__ = ["DelayedMover", "OwnedDelayedMover", "move_due"]

log = logging.getLogger(__name__)
_MOVE = script("move_due_members")
_EARLIEST = script("earliest_due")


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

    async def start(self) -> None:
        """Start moving in a background task (idempotent). ``stop()`` ends it; a move in
        progress completes in Redis (it is one script)."""
        self._launch("redis-streaming-delayed-mover")

    async def _metas(self) -> list[TopicMeta]:
        names = self.topics if self.topics is not None else await self.store.names()
        return await self.store.get_many(list(names))

    async def move_once(self) -> tuple[int, float]:
        """Run one pass now; returns ``(messages moved, seconds until the next is due)``."""
        targets = [
            (meta.name, i, meta.retention_max_len)
            for meta in await self._metas()
            for i in range(meta.partitions)
        ]
        moved, wait = await move_due(self.redis, self.options, self.keys, targets)
        self.moved += moved
        return moved, wait

    async def _run(self) -> None:
        async def step() -> float:
            _, wait = await self.move_once()
            return wait

        await self._repeat("delayed mover", step, Backoff(), log)


async def move_due(
    redis: Any, options: MQOptions, keys: Keys, targets: list[tuple[str, int, int]]
) -> tuple[int, float]:
    """Move the due delayed messages of ``targets`` (topic, partition, retention max length);
    returns ``(messages moved, seconds until the next is due)``, the wait at most
    ``mq.delayed_interval_ms``.

    One round trip reads the server's clock and each delayed set's earliest due time; the
    moving script runs, in a second round trip, only for the partitions with something due. On
    a single server the first is one script call for all partitions; on a cluster, one
    ``ZRANGE`` per partition (their keys are in different slots).
    """
    interval = options.delayed_interval_ms / 1000
    if not targets:
        return 0, interval
    now_ms, earliest = await _earliest(redis, [keys.delayed(t, p) for t, p, _ in targets])
    due_now: list[tuple[str, int, int]] = []
    later: list[float] = []
    for target, due_ms in zip(targets, earliest, strict=True):
        if due_ms is None:
            continue  # nothing scheduled
        if due_ms <= now_ms:
            due_now.append(target)
        else:
            later.append(due_ms)
    moved, wait = 0, interval
    if due_now:
        moved, full, next_due = await _move(redis, options, keys, due_now)
        if full:
            return moved, 0.0  # a partition had more due than one call moves
        later += next_due
    if later:
        wait = min(interval, max(0.0, (min(later) - now_ms) / 1000))
    return moved, wait


async def _earliest(redis: Any, delayed: list[str]) -> tuple[int, list[float | None]]:
    """The server's time (ms) and each delayed set's earliest due time (``None``: empty)."""
    if not is_cluster(redis):
        reply = await _EARLIEST(redis, delayed, [])
        return int(reply[0]), [None if int(d) < 0 else float(d) for d in reply[1:]]
    pipe = redis.pipeline(transaction=False)
    pipe.execute_command("TIME")
    for key in delayed:
        pipe.zrange(key, 0, 0, withscores=True)
    clock, *firsts = await pipe.execute()
    now_ms = int(clock[0]) * 1000 + int(clock[1]) // 1000
    return now_ms, [float(first[0][1]) if first else None for first in firsts]


async def _move(
    redis: Any, options: MQOptions, keys: Keys, targets: list[tuple[str, int, int]]
) -> tuple[int, bool, list[float]]:
    """Run the moving script for ``targets`` in one round trip: (moved, a batch was full,
    the next due times left)."""
    calls = [
        ([keys.delayed(t, p), keys.stream(t, p)], [options.delayed_batch, maxlen])
        for t, p, maxlen in targets
    ]
    replies = await _MOVE.run_pipelined(redis, calls)
    moved = sum(int(r[0]) for r in replies)
    full = any(int(r[0]) >= options.delayed_batch for r in replies)
    return moved, full, [float(r[1]) for r in replies if int(r[1]) >= 0]


class OwnedDelayedMover(BackgroundLoop):
    """A consumer's mover of producer-delayed messages: the partitions it owns (in any group),
    all in one round trip per pass, sleeping like :class:`DelayedMover`.

    ``targets`` returns the (topic, partition, retention max length) triples owned right now.
    One task per consumer, rather than a call per owned partition, keeps an idle consumer's
    cost flat in the number of partitions it owns.
    """

    def __init__(
        self,
        redis: Any,
        options: MQOptions,
        targets: Callable[[], list[tuple[str, int, int]]],
    ) -> None:
        super().__init__()
        self.redis = redis
        self.options = options
        self.keys = Keys(options.namespace)
        self.targets = targets
        self.moved = 0

    def start(self) -> None:
        """Start the mover task (idempotent)."""
        self._launch("redis-streaming-owned-delayed-mover")

    async def _run(self) -> None:
        async def step() -> float:
            moved, wait = await move_due(self.redis, self.options, self.keys, self.targets())
            self.moved += moved
            return wait

        await self._repeat("delayed mover (owned partitions)", step, Backoff(), log)
