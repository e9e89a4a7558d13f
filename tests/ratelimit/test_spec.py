"""Parsing rate limit specs: what they mean, and what a wrong one says to write instead."""

from __future__ import annotations

import pytest

from redis_streaming import ConfigurationError, RateLimit


@pytest.mark.parametrize(
    ("spec", "count", "period_s", "burst", "algorithm"),
    [
        ("100/s", 100, 1.0, 1, "token_bucket"),
        ("20/min", 20, 60.0, 1, "token_bucket"),
        ("5/100ms", 5, 0.1, 1, "token_bucket"),
        (" 1000 / 2 hours ", 1000, 7200.0, 1, "token_bucket"),
        ("100/s, burst=20", 100, 1.0, 20, "token_bucket"),
        ("3/200ms, algorithm=sliding_window", 3, 0.2, 1, "sliding_window"),
    ],
)
def test_specs_parse_to_count_period_burst_and_algorithm(
    spec: str, count: int, period_s: float, burst: int, algorithm: str
) -> None:
    limit = RateLimit.parse(spec)
    assert (limit.count, limit.period_s, limit.burst, limit.algorithm) == (
        count,
        pytest.approx(period_s),
        burst,
        algorithm,
    )
    assert RateLimit.parse(str(limit)) == limit
    assert RateLimit.parse(limit) is limit


@pytest.mark.parametrize(
    "spec",
    [
        "100",
        "100 per second",
        "100/m",
        "100/fortnight",
        "-5/s",
        "0/s",
        "5/0ms",
        "1.5/s",
        "100/s, burst=0",
        "100/s, burst=many",
        "100/s, bursts=5",
        "100/s, burst=5, burst=6",
        "100/s, algorithm=leaky",
        "100/s, algorithm=sliding_window, burst=5",
        "",
    ],
)
def test_a_bad_spec_is_a_configuration_error_saying_what_to_write(spec: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RateLimit.parse(spec)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "rate limit" in message
    assert "'100/s'" in message or "burst" in message or "positive" in message


def test_a_non_string_spec_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'20/min'"):
        RateLimit.parse(100)  # type: ignore[arg-type]
