"""RetryPolicy.backoff_s and the policy's bounds (docs/retries.md "RetryPolicy"): plain unit tests,
no server needed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from redis_streaming import RetryPolicy

SAMPLES = 2000  # draws per jittered delay: P(none in an outer 5 % band) = 0.75 ** 2000, never


def test_delays_grow_by_the_multiplier_from_the_initial_backoff() -> None:
    policy = RetryPolicy(initial_backoff_s=0.5, multiplier=3.0, max_backoff_s=1000, jitter=0)
    assert [policy.backoff_s(n) for n in range(1, 6)] == [0.5, 1.5, 4.5, 13.5, 40.5]


def test_delays_are_capped_at_max_backoff() -> None:
    policy = RetryPolicy(initial_backoff_s=1.0, multiplier=2.0, max_backoff_s=5.0, jitter=0)
    assert [policy.backoff_s(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert policy.backoff_s(1000) == 5.0  # no overflow, still the cap


def test_jitter_spreads_each_delay_within_plus_minus_the_fraction() -> None:
    policy = RetryPolicy(initial_backoff_s=2.0, multiplier=2.0, max_backoff_s=60, jitter=0.1)
    for attempt, base in ((1, 2.0), (3, 8.0)):
        delays = [policy.backoff_s(attempt) for _ in range(SAMPLES)]
        assert all(base * 0.9 <= d <= base * 1.1 for d in delays), (min(delays), max(delays))
        # spread over the whole band, not a constant factor
        assert min(delays) < base * 0.95
        assert max(delays) > base * 1.05


def test_jitter_applies_to_the_capped_delay() -> None:
    policy = RetryPolicy(initial_backoff_s=1.0, multiplier=10.0, max_backoff_s=3.0, jitter=0.5)
    delays = [policy.backoff_s(4) for _ in range(SAMPLES)]  # 1000 s before the cap
    assert all(1.5 <= d <= 4.5 for d in delays), (min(delays), max(delays))
    assert min(delays) < 2.0
    assert max(delays) > 4.0


def test_zero_backoff_is_zero_whatever_the_jitter() -> None:
    policy = RetryPolicy(initial_backoff_s=0, max_backoff_s=0, jitter=1.0)
    assert {policy.backoff_s(n) for n in (1, 2, 5)} == {0.0}


def test_max_backoff_below_initial_backoff_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"max_backoff_s \(1\.0\) is below initial_backoff_s"):
        RetryPolicy(initial_backoff_s=2.0, max_backoff_s=1.0)
    with pytest.raises(ValueError, match="raise max_backoff_s"):  # a ValueError, as documented
        RetryPolicy(initial_backoff_s=2.0, max_backoff_s=1.0)
    assert RetryPolicy(initial_backoff_s=2.0, max_backoff_s=2.0).backoff_s(5) > 0  # equal: fine
