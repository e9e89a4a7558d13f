"""Options shared by every framework component (the ``mq`` settings section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from redis_streaming.mq.keys import validate_name

__all__ = ["MQOptions"]


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

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        return validate_name(value, "namespace")
