"""Options of the stream-processing runtime (the starter's ``runtime`` settings section)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RuntimeOptions"]


class RuntimeOptions(BaseModel):
    """How jobs read, retry and commit. Partitions, leases and rebalancing come from
    :class:`~redis_streaming.MQOptions` (the same coordination as consumer groups)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Most entries a task reads, processes and commits at once.",
    )
    cache_max_keys: int = Field(
        100_000,
        ge=0,
        description="Most state keys a task keeps in its write-back cache (per partition).",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        description="Runs of a batch whose function raises before the failing entries are "
        "dead-lettered (1: dead-letter at the first failure).",
    )
    retry_backoff_ms: int = Field(
        100, ge=0, description="Wait before the first re-run of a failed batch; doubles per run."
    )
    start: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Where a stage's new consumer group starts on its input topic: every "
        "entry already there, or only entries appended after it is created.",
    )
    forward_interval_ms: int = Field(
        200,
        ge=10,
        description="Redis Cluster: how often a task's outbox forwarder looks for outputs "
        "besides the wake-up after each commit.",
    )
