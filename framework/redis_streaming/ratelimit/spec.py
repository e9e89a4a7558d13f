"""``RateLimit``: how many per how long, parsed from ``"100/s"``, ``"20/min"``, ``"5/100ms"``."""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from redis_streaming.errors import ConfigurationError

__all__ = ["Algorithm", "RateLimit"]

Algorithm = Literal["token_bucket", "sliding_window"]

_UNITS_S = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*", re.IGNORECASE)
_HOW = (
    "write '<count>/<period>' such as '100/s', '20/min', '5/100ms' or '1000/h' (units ms, s, "
    "min, h), optionally followed by ', burst=<n>' (token bucket) or "
    "', algorithm=sliding_window'"
)


def _unit_s(unit: str) -> float | None:
    unit = unit.lower()
    if unit not in _UNITS_S and unit.endswith("s"):
        unit = unit[:-1]  # plural: "minutes", "hours"
    return _UNITS_S.get(unit)


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """At most ``count`` per ``period_s`` seconds, shared by every process using the same
    limiter name.

    ``algorithm="token_bucket"`` (default): a steady rate of ``count / period_s`` per second
    with bursts of up to ``burst`` at once after idle time (default 1: evenly spaced), so any
    window of ``W`` seconds holds at most ``burst + W * count / period_s``.
    ``algorithm="sliding_window"``: at most ``count`` in any window of ``period_s`` (all of
    them may come at once); ``burst`` does not apply. Build one with :meth:`parse`.
    """

    count: int
    period_s: float
    burst: int = 1
    algorithm: Algorithm = "token_bucket"

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or self.count < 1:
            raise ConfigurationError(f"rate limit count must be a positive integer: {self!r}")
        if not self.period_s > 0:
            raise ConfigurationError(f"rate limit period must be positive: {self!r}")
        if self.algorithm not in ("token_bucket", "sliding_window"):
            raise ConfigurationError(
                f"rate limit algorithm must be 'token_bucket' or 'sliding_window', "
                f"not {self.algorithm!r}"
            )
        if not isinstance(self.burst, int) or self.burst < 1:
            raise ConfigurationError(f"rate limit burst must be a positive integer: {self!r}")
        if self.algorithm == "sliding_window" and self.burst != 1:
            raise ConfigurationError(
                "rate limit burst applies to the token bucket only; a sliding window allows "
                f"its whole count at once: {self!r}"
            )

    @classmethod
    def parse(cls, spec: str | RateLimit) -> RateLimit:
        """``"<count>/<period>[, burst=<n>][, algorithm=token_bucket|sliding_window]"``; a
        ``RateLimit`` is returned as it is. Raises :class:`~redis_streaming.ConfigurationError`
        saying what to write instead."""
        if isinstance(spec, RateLimit):
            return spec
        if not isinstance(spec, str):
            raise ConfigurationError(f"invalid rate limit {spec!r}: {_HOW}")
        head, *options = [part.strip() for part in spec.split(",")]
        match = _RATE.fullmatch(head)
        unit_s = _unit_s(match.group(3)) if match else None
        if match is None or unit_s is None:
            raise ConfigurationError(f"invalid rate limit {spec!r}: {_HOW}")
        period_s = float(match.group(2) or 1) * unit_s
        settings: dict[str, str] = {}
        for option in options:
            name, sep, value = (s.strip() for s in option.partition("="))
            if not sep or name not in ("burst", "algorithm") or name in settings:
                raise ConfigurationError(
                    f"invalid rate limit {spec!r}: unknown or repeated option {option!r}; {_HOW}"
                )
            settings[name] = value
        burst = settings.get("burst", "1")
        if not burst.isdigit():
            raise ConfigurationError(f"invalid rate limit {spec!r}: burst must be a count; {_HOW}")
        algorithm = settings.get("algorithm", "token_bucket")
        if algorithm not in ("token_bucket", "sliding_window"):
            raise ConfigurationError(f"invalid rate limit {spec!r}: unknown algorithm; {_HOW}")
        try:
            return cls(int(match.group(1)), period_s, int(burst), algorithm)  # type: ignore[arg-type]
        except ConfigurationError as exc:
            raise ConfigurationError(f"invalid rate limit {spec!r}: {exc}; {_HOW}") from None

    @property
    def per_second(self) -> float:
        """The long-run rate: ``count / period_s``."""
        return self.count / self.period_s

    @property
    def max_at_once(self) -> int:
        """The most one acquisition may take: ``burst`` (token bucket) or ``count`` (window)."""
        return self.burst if self.algorithm == "token_bucket" else self.count

    def __str__(self) -> str:
        text = f"{self.count}/{self.period_s:g}s"
        if self.algorithm == "sliding_window":
            return f"{text}, algorithm=sliding_window"
        return text if self.burst == 1 else f"{text}, burst={self.burst}"
