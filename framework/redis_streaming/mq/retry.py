"""Retry policy: how often and how long to wait before a failed message is handled again."""

from __future__ import annotations

import importlib
import json
import random
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from redis_streaming.errors import ConfigurationError

__all__ = ["RetryPolicy", "names_list"]


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
    # NoDecode: an environment variable holds names separated by commas (or a JSON list).
    non_retryable: Annotated[tuple[Any, ...], NoDecode] = Field(
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
