"""The ``runtime`` section: how the application's ``@job`` s read, retry and commit, with
per-job overrides under ``runtime.jobs.<name>``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import ConfigDict, Field

from redis_streaming import RuntimeOptions
from redis_streaming_starter.settings_sections import Section

__all__ = ["JobSettings", "RuntimeSettings"]

# The RuntimeOptions fields a job may override.
_OVERRIDABLE = (
    "batch_size",
    "cache_max_keys",
    "max_attempts",
    "retry_backoff_ms",
    "start",
    "forward_interval_ms",
)


class JobSettings(Section):
    """One job's switch and overrides, under runtime.jobs.NAME (unset = the runtime value)."""

    enabled: bool = Field(True, description="Run the job in this application.")
    batch_size: int | None = Field(
        None, ge=1, le=10_000, description="Overrides runtime.batch_size."
    )
    cache_max_keys: int | None = Field(None, ge=0, description="Overrides runtime.cache_max_keys.")
    max_attempts: int | None = Field(None, ge=1, description="Overrides runtime.max_attempts.")
    retry_backoff_ms: int | None = Field(
        None, ge=0, description="Overrides runtime.retry_backoff_ms."
    )
    start: Literal["earliest", "latest"] | None = Field(
        None, description="Overrides runtime.start."
    )
    forward_interval_ms: int | None = Field(
        None, ge=10, description="Overrides runtime.forward_interval_ms."
    )


class RuntimeSettings(RuntimeOptions):
    """The stream-processing runtime of the application's ``@job`` s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partitions: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="Partitions of the jobs' internal (repartition) topics when the job sets "
        "none; unset = mq.default_partitions.",
    )
    shutdown_timeout_s: float | None = Field(
        None,
        ge=0,
        description="How long a stopping job's batch in progress may take before it is left "
        "pending for the next owner; unset = mq.shutdown_timeout_s.",
    )
    jobs: dict[str, JobSettings] = Field(
        default_factory=dict,
        description="Per job, by name: enabled and overrides of the fields above "
        "(REDIS_STREAMING_RUNTIME__JOBS__<NAME>__ENABLED=false; names are matched ignoring "
        "case, as environment variables cannot hold every job name's case).",
    )

    def _settings_of(self, name: str) -> JobSettings | None:
        exact = self.jobs.get(name)
        if exact is not None:
            return exact
        folded = [s for n, s in self.jobs.items() if n.lower() == name.lower()]
        return folded[0] if folded else None

    def for_job(self, name: str) -> tuple[bool, RuntimeOptions]:
        """Whether job ``name`` is enabled, and its options with its overrides applied."""
        base = {f: getattr(self, f) for f in RuntimeOptions.model_fields}
        own = self._settings_of(name)
        if own is None:
            return True, RuntimeOptions(**base)
        overrides = {f: getattr(own, f) for f in _OVERRIDABLE if getattr(own, f) is not None}
        return own.enabled, RuntimeOptions(**{**base, **overrides})

    def unknown_jobs(self, names: Iterable[str]) -> list[str]:
        """The names under ``runtime.jobs`` that match none of ``names``."""
        known = {n.lower() for n in names}
        return sorted(n for n in self.jobs if n.lower() not in known)
