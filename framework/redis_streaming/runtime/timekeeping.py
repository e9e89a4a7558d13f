"""A task's event time and timers: the partition clock and both timer sets as the last commit
left them, when an idle partition's clock makes timers due, and firing the due ones inside a
batch (docs/design.md, "Windows, time and timers")."""

from __future__ import annotations

import time
from typing import Any

from redis_streaming._redis.background import Prefixed
from redis_streaming.runtime.commit import Committer
from redis_streaming.runtime.context import BatchRun
from redis_streaming.runtime.graph import Stage
from redis_streaming.runtime.loader import StateLoader
from redis_streaming.runtime.lookups import TableLookups
from redis_streaming.runtime.shared import StageShared
from redis_streaming.state.codec import decode
from redis_streaming.window.clock import NEVER, PartitionClock
from redis_streaming.window.timers import TimerIndex

__all__ = ["FIRE_LIMIT", "TaskTime", "now_ms"]

FIRE_LIMIT = 1000  # timers fired per batch at most (the rest in the next ones)


def now_ms() -> int:
    """Real time in epoch milliseconds (tasks read their stage's clock instead)."""
    return int(time.time() * 1000)


class TaskTime:
    """The clock and timers of one task, and the firing of its due timers."""

    def __init__(
        self,
        shared: StageShared,
        committer: Committer,
        loader: StateLoader,
        lookups: TableLookups | None,
        log: Prefixed,
    ) -> None:
        self.shared = shared
        self.stage: Stage = shared.stage
        self.committer = committer
        self.loader = loader
        self.lookups = lookups
        self.log = log
        stage = self.stage
        self.clock = PartitionClock(stage.ooo_ms, stage.idle_ms, None, NEVER, shared.clock.now_ms())
        self.timer_index = TimerIndex()
        self.wall_index = TimerIndex()

    async def load(self) -> None:
        """Read the partition's clock and timers as the last commit left them."""
        pipe = self.shared.redis.pipeline(transaction=False)
        pipe.hmget(self.committer.base[1], ["max_ts", "wm_floor", "ticks"])
        pipe.zrange(self.committer.timers, 0, -1, withscores=True)
        pipe.zrange(self.committer.wall_timers, 0, -1, withscores=True)
        (max_ts, floor, ticks), timers, wall = await pipe.execute()
        self.committer.ticks = int(ticks or 0)
        stage = self.stage
        self.clock = PartitionClock(
            stage.ooo_ms,
            stage.idle_ms,
            None if max_ts is None else int(max_ts),
            NEVER if floor is None else int(floor),
            self.shared.clock.now_ms(),
        )
        self.timer_index = TimerIndex((m, int(score)) for m, score in timers)
        self.wall_index = TimerIndex((m, int(score)) for m, score in wall)

    def tick_watermark(self) -> int | None:
        """No entries came: the watermark to fire timers at (an idle partition's has moved
        on, or :meth:`JobHandle.advance_watermark` moved it), or None when no timer is due by
        it or by the wall clock."""
        now = self.shared.clock.now_ms()
        target = self.clock.idle_watermark(now)
        if target is None:
            target = self.clock.watermark
        if self.shared.watermark_floor > target:  # advanced from outside: commit the new one
            return self.shared.watermark_floor
        earliest = self.timer_index.earliest()
        wall = self.wall_index.earliest()
        if (earliest is None or earliest > target) and (wall is None or wall > now):
            return None
        return target

    async def fire(self, run: BatchRun, last: bool) -> None:
        """Fire the event-time timers the batch's watermark has reached (their state loaded in
        one round trip first); their effects commit with the batch, which also removes them.
        On the last attempt, a timer whose functions raise has its effects undone and fires
        again without emitting (a window closes, a ``process`` timer is dropped): one bad
        window must not hold the partition's other work back forever."""
        ops = self.stage.timer_ops
        if not ops:
            return
        fired: list[tuple[Any, str, list[Any]]] = []
        for domain, timers, now in (
            ("event", run.timers, run.clock.watermark),
            ("wall", run.wall_timers, run.now_ms),
        ):
            for member in timers.due(now, FIRE_LIMIT):
                op, *rest = decode(member)
                node = ops.get(op)
                if node is None:  # an operator the job no longer has: drop its timer
                    timers.set(member, None)
                    continue
                fired.append((node, domain, rest))
        if not fired:
            return
        stores = {name for node, _, _ in fired for name in node.store_names()}
        keys = {rest[0] for _, _, rest in fired}
        await self.loader.load(stores, keys)
        if self.lookups is not None:  # what the timers emit may join a table: their keys' values
            run.lookups.update(await self.lookups.load(keys))
        for node, domain, rest in fired:
            mark = run.savepoint()
            try:
                await node.fire(run, *rest, domain=domain)
            except Exception as exc:
                if not last:
                    raise
                run.rollback(mark)
                await node.fire(run, *rest, domain=domain, emit=False)
                self.shared.record_error(exc)
                self.log.error(
                    "a function raised on a timer of %s (key %r); its results are dropped: %s",
                    node.op, rest[0], self.shared.last_error,
                )  # fmt: skip
