"""Runs a task's outbox forwarder (Redis Cluster): after each commit that wrote outputs, and
every ``forward_interval_ms`` besides, until the outbox is empty."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from redis_streaming._redis.background import BackgroundLoop, Prefixed
from redis_streaming._redis.backoff import Backoff
from redis_streaming.runtime.forwarder import OutboxForwarder

if TYPE_CHECKING:
    from redis_streaming.runtime.shared import StageShared

__all__ = ["ForwarderLoop"]

log = logging.getLogger(__name__)
_LIMIT = 1000


class ForwarderLoop(BackgroundLoop):
    """The forwarding loop of one task. Forwarding is idempotent and ordered, so it may run
    beside a zombie's or a new owner's forwarder, and it goes on while the task stops: the
    last commit's outputs are forwarded before :meth:`stop` returns (unless Redis is down;
    then the next owner forwards them)."""

    def __init__(self, shared: StageShared, partition: int) -> None:
        super().__init__()
        stage = shared.stage
        self.shared = shared
        self.forwarder = OutboxForwarder(
            shared.redis, shared.keys, stage.job, stage.group, stage.topic, partition
        )
        self.log = Prefixed(log, f"job {stage.group} partition {partition} forwarder")
        self._wake = asyncio.Event()
        self.backlog = 0

    def start(self) -> None:
        """Start forwarding in a background task."""
        self._launch(f"rs-forwarder-{self.shared.stage.group}")

    def wake(self) -> None:
        """Forward now (a commit wrote outputs)."""
        self._wake.set()

    async def _run(self) -> None:
        await self._repeat("forward", self._step, Backoff(), log)

    async def _step(self) -> float:
        self._wake.clear()
        while await self.forwarder.forward(_LIMIT) >= _LIMIT:
            pass
        self.backlog = await self.forwarder.backlog()
        interval = self.shared.runtime.forward_interval_ms / 1000
        try:
            async with asyncio.timeout(interval):
                await self._wake.wait()
        except TimeoutError:
            pass
        return 0.0

    async def stop(self) -> None:
        """Forward what the last commits wrote (bounded), then stop."""
        try:
            async with asyncio.timeout(self.shared.options.shutdown_timeout_s):
                while await self.forwarder.forward(_LIMIT):
                    pass
        except Exception as exc:
            self.log.warning("could not forward the outbox on stop (%s); the next owner will", exc)
        await self._end(0)
