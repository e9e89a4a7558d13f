"""Writing dead letters: the original entry plus where, why and how often it failed."""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from typing import Any

from redis_streaming.mq.durability import Durability
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.options import MQOptions

__all__ = ["REASONS", "DeadLetterWriter"]

REASONS = ("max_attempts", "non_retryable", "rejected", "undecodable", "poison")


def _tail(text: str, limit: int) -> str:
    """The last ``limit`` characters of ``text``, after "..." when some were cut ("" for 0)."""
    if len(text) <= limit:
        return text
    return "..." + text[-limit:] if limit > 0 else ""


class DeadLetterWriter:
    """Appends dead letters to ``rs:dlq:{T}`` and acknowledges the failed entry.

    The DLQ entry is written, and confirmed, before the XACK is sent (the DLQ ``{T}`` and the
    partition ``{T:i}`` are in different cluster slots, so no script can do both): a crash in
    between leaves the entry pending, so it may be dead-lettered twice, never lost.

    With a durability level that waits (``mq.durability``), "confirmed" includes the wait: the
    XACK is sent only once the replicas have the dead letter, and a short wait raises
    :class:`~redis_streaming.errors.DurabilityError` with the entry still pending (it is
    dead-lettered again later: possibly twice, never lost). This matters on a Redis Cluster,
    where the dead letter and the acknowledgement live on different masters: a failover of
    the dead letter's master alone must not lose a dead letter whose entry was acknowledged.
    """

    def __init__(self, redis: Any, options: MQOptions) -> None:
        self.redis = redis
        self.options = options
        self.keys = Keys(options.namespace)
        self.durability = Durability.of(options)

    async def write(
        self,
        *,
        topic: str,
        partition: int,
        group: str,
        consumer: str,
        source_key: str,
        entry_id: str,
        fields: Mapping[bytes, bytes],
        reason: str,
        attempts: int,
        error: BaseException | str | None,
        ack: bool = True,
    ) -> str:
        """Dead-letter one entry and acknowledge it; returns the DLQ entry id.

        ``ack=False`` leaves the acknowledgement to the caller (the runtime acknowledges a
        dead-lettered entry in its batch's atomic commit)."""
        args: list[Any] = []
        for name, value in fields.items():
            if not name.startswith(b"dlq_"):
                args += (name, value)
        origin = fields.get(b"origin_id")
        if isinstance(error, BaseException):
            error_type = type(error).__qualname__
            error_text = str(error)
            tb = "".join(traceback.format_exception(error))
        else:
            error_type, error_text, tb = "", error or "", ""
        args += (
            "dlq_group", group,
            "dlq_consumer", consumer,
            "dlq_partition", partition,
            "dlq_origin_id", origin if origin else entry_id,
            "dlq_attempts", attempts,
            "dlq_reason", reason,
            "dlq_error_type", error_type,
            "dlq_error", _tail(error_text, 2000),
            "dlq_traceback", _tail(tb, self.options.dlq.traceback_max_chars),
            "dlq_failed_ts", time.time_ns() // 10**6,
        )  # fmt: skip
        trim = ("MAXLEN", "~", self.options.dlq.max_len) if self.options.dlq.max_len else ()
        # Two round trips on purpose: the XACK is sent only once the XADD has succeeded. In
        # one pipeline a failed XADD (an error reply) would not stop the XACK, and a cluster
        # pipeline sends the two to their nodes concurrently, in no particular order.
        dlq_key = self.keys.dlq(topic)
        if self.durability.waits:
            await self.durability.ensure(self.redis)
            pipe = self.redis.pipeline(transaction=False)
            pipe.execute_command("XADD", dlq_key, *trim, "*", *args)
            self.durability.queue(pipe, self.redis, [dlq_key])
            replies = await pipe.execute()
            dlq_id = replies[0]
            doing = f"dead-lettering entry {entry_id} of topic {topic!r}"
            self.durability.check(replies[1:], doing, 1)
        else:
            dlq_id = await self.redis.execute_command("XADD", dlq_key, *trim, "*", *args)
        if ack:
            await self.redis.xack(source_key, group, entry_id)
        return str(dlq_id.decode())
