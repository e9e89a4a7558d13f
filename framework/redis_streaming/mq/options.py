"""Options shared by every framework component (the ``mq`` settings section), and the retry
policy: how often and how long to wait before a failed message is handled again."""

from __future__ import annotations

import importlib
import json
import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from redis_streaming.errors import ConfigurationError
from redis_streaming.mq.durability import LEVELS, normalize
from redis_streaming.mq.keys import validate_name

__all__ = ["DlqOptions", "MQOptions", "RetryPolicy", "names_list"]


def _resolve(name: str) -> type[BaseException]:
    module, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module or "builtins"), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigurationError(
            f"non_retryable names {name!r}, which cannot be imported; use a dotted path such as "
            "'builtins.ValueError' or 'myapp.errors.InvalidOrder'"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, BaseException)):
        raise ConfigurationError(f"non_retryable: {name!r} is not an exception class")
    return obj


def names_list(text: str) -> list[Any]:
    """Names from text: a JSON list (``["a", "b"]``) or separated by commas (``a, b``)."""
    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(
                f"{text!r} is not a JSON list; write the names separated by commas instead "
                "(a.B, c.D)"
            ) from exc
        if not isinstance(value, list):
            raise ConfigurationError(f"{text!r} is not a list")
        return value
    return [part.strip() for part in text.split(",") if part.strip()]


class RetryPolicy(BaseModel):
    """Bounded retries with capped exponential backoff.

    ``max_attempts`` counts the first delivery: 5 means one delivery and up to four retries. The
    delay before attempt ``n + 1`` is ``initial_backoff_s * multiplier ** (n - 1)``, capped at
    ``max_backoff_s``, then spread by ``± jitter`` (a fraction). Exceptions of a
    ``non_retryable`` type (classes or dotted names) are not retried.

    ``mode="delayed"`` (default) acknowledges the failed entry and schedules the retry atomically,
    so the partition moves on meanwhile; ``mode="blocking"`` waits and calls the handler again in
    place, keeping strict order within the partition (the entry stays pending, so a crash loses
    nothing).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    max_attempts: int = Field(
        5, ge=1, le=1000, description="Deliveries in all, the first included."
    )
    initial_backoff_s: float = Field(1.0, ge=0, description="Delay before the first retry.")
    multiplier: float = Field(2.0, ge=1, description="Growth of the delay per further retry.")
    max_backoff_s: float = Field(60.0, ge=0, description="Longest delay between two attempts.")
    jitter: float = Field(0.1, ge=0, le=1, description="Random spread of each delay, ± fraction.")
    non_retryable: tuple[Any, ...] = Field(
        (), description="Exception types (or dotted names) that go to the dead letters at once."
    )
    mode: Literal["delayed", "blocking"] = Field(
        "delayed", description="'delayed' (schedule and move on) or 'blocking' (retry in place)."
    )

    @field_validator("non_retryable", mode="before")
    @classmethod
    def _types(cls, value: Any) -> tuple[type[BaseException], ...]:
        if isinstance(value, str):
            value = names_list(value)
        out = []
        for item in value or ():
            if isinstance(item, str):
                item = _resolve(item)
            if not (isinstance(item, type) and issubclass(item, BaseException)):
                raise ConfigurationError(f"non_retryable: {item!r} is not an exception class")
            out.append(item)
        return tuple(out)

    @model_validator(mode="after")
    def _bounds(self) -> RetryPolicy:
        if self.max_backoff_s < self.initial_backoff_s:
            raise ConfigurationError(
                f"max_backoff_s ({self.max_backoff_s}) is below initial_backoff_s "
                f"({self.initial_backoff_s}); raise max_backoff_s"
            )
        return self

    def backoff_s(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
        base = self.initial_backoff_s * self.multiplier ** max(0, attempt - 1)
        base = min(self.max_backoff_s, base)
        if self.jitter:
            base *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, base)

    def is_retryable(self, exc: BaseException) -> bool:
        """False for exceptions of a ``non_retryable`` type."""
        return not isinstance(exc, self.non_retryable)


class DlqOptions(BaseModel):
    """Dead-letter streams (``rs:dlq:{T}``): their own retention, separate from the topic's."""

    model_config = ConfigDict(extra="forbid")

    max_len: int = Field(
        100_000, ge=0, description="Approximate most entries per topic's DLQ stream; 0 = no cap."
    )
    max_age_ms: int = Field(
        0,
        ge=0,
        description="Dead letters older than this are trimmed by the housekeeper; 0 = keep.",
    )
    traceback_max_chars: int = Field(
        4000, ge=0, description="Longest handler traceback kept in a dead letter (its tail)."
    )


class MQOptions(BaseModel):
    """Defaults of the ``mq`` settings section, handed to every framework component.

    The starter's ``Settings.mq`` is this model, so a value set through an environment variable
    (``REDIS_STREAMING_MQ__<FIELD>``) reaches the components unchanged.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    namespace: str = Field(
        "rs",
        description="Prefix of every Redis key the library writes; separates applications "
        "sharing one Redis. Characters [A-Za-z0-9._-].",
    )
    default_partitions: int = Field(
        8, ge=1, le=4096, description="Partitions of a topic created automatically on first use."
    )
    auto_create_topics: bool = Field(
        True,
        description="Create unknown topics on first send or subscribe with default_partitions; "
        "when off, sending to an unknown topic raises TopicNotFound.",
    )
    default_retention_max_len: int = Field(
        0,
        ge=0,
        description="Approximate maximum entries per partition stream for topics created "
        "automatically (XADD MAXLEN ~); 0 keeps everything.",
    )
    max_payload_bytes: int = Field(
        1024 * 1024,
        ge=1,
        description="Largest encoded payload accepted by the producer; larger ones raise "
        "PayloadTooLarge before anything is written.",
    )
    topic_refresh_s: float = Field(
        5.0,
        gt=0,
        description="How long a producer trusts its cached partition count of a topic before "
        "reading it again (so added partitions are picked up).",
    )
    delayed_interval_ms: int = Field(
        200,
        ge=10,
        description="Longest time the delayed-message mover sleeps between two passes; it wakes "
        "earlier when a message is due sooner.",
    )
    delayed_batch: int = Field(
        500, ge=1, description="Most delayed messages one partition moves in a single pass."
    )

    batch_size: int = Field(
        100, ge=1, le=10_000, description="Most entries one XREADGROUP returns per stream."
    )
    block_ms: int = Field(
        1000,
        ge=1,
        le=60_000,
        description="How long a partition read blocks waiting for entries; also the longest "
        "time a stopping worker takes to notice (a pause holds what a read in flight returns). "
        "Keep it below the socket timeout.",
    )
    lease_ttl_s: float = Field(
        10.0,
        gt=0,
        description="Lifetime of a partition lease and of a group membership without renewal; "
        "a crashed consumer's partitions are taken over after about this long.",
    )
    rebalance_interval_s: float = Field(
        2.0,
        gt=0,
        description="How often a consumer heartbeats, renews its leases and rebalances; must "
        "be below a third of lease_ttl_s.",
    )
    max_deliveries: int = Field(
        5,
        ge=1,
        description="Deliveries of one entry (counted by Redis, crashes included) after which "
        "it is a poison message and is dead-lettered instead of handled again.",
    )
    shutdown_timeout_s: float = Field(
        30.0,
        ge=0,
        description="How long a graceful stop waits for running handlers before it cancels "
        "them (their messages are redelivered).",
    )
    ack_interval_ms: int = Field(
        100,
        ge=0,
        description="Longest time a handled message waits for its batched XACK when handlers "
        "are slow; batches are acknowledged at their end anyway.",
    )
    durability: str = Field(
        "leader",
        description="When a write counts as done: 'leader' (the master replied), 'replicas=N' "
        "(then WAIT: N replicas have it), 'aof' / 'aof=N' (then WAITAOF: the master's "
        "append-only file, and N replicas', have it; Redis 7.2+ or Valkey). Applies to sends, "
        "job commits and dead letters; a write not confirmed in durability_timeout_ms raises "
        "DurabilityError. See docs/high-availability.md.",
    )
    durability_timeout_ms: int = Field(
        1000,
        ge=1,
        le=60_000,
        description="Longest wait for the copies the durability level asks for.",
    )
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Retry policy of subscriptions without one."
    )
    dlq: DlqOptions = Field(default_factory=DlqOptions, description="Dead-letter streams.")

    @model_validator(mode="after")
    def _check_timing(self) -> MQOptions:
        if self.rebalance_interval_s * 3 > self.lease_ttl_s:
            raise ConfigurationError(
                f"rebalance_interval_s ({self.rebalance_interval_s}) must be at most a third of "
                f"lease_ttl_s ({self.lease_ttl_s}) so leases are renewed in time; lower "
                "rebalance_interval_s or raise lease_ttl_s"
            )
        if self.block_ms / 1000 >= self.lease_ttl_s / 2:
            raise ConfigurationError(
                f"block_ms ({self.block_ms}) must stay below half of lease_ttl_s "
                f"({self.lease_ttl_s} s); lower block_ms"
            )
        return self

    @field_validator("durability", mode="before")
    @classmethod
    def _check_durability(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ConfigurationError(f"durability must be one of {LEVELS}, got {value!r}")
        return normalize(value)

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        return validate_name(value, "namespace")
