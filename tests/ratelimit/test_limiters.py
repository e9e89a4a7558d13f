"""Token bucket and sliding window semantics against a real server: burst, refill, waiting in
turn, the limit shared by two clients, the one key each limiter leaves behind."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from redis_streaming import InvalidArgument, RateLimit, SlidingWindow, TokenBucket
from redis_streaming.ratelimit import limiter
from redis_streaming.testing import client_from_url

# The server's clock decides; the client only sleeps what it is told. Slack for the time a
# reply takes to travel and for a loaded test machine.
SLACK_S = 0.05


async def test_a_token_bucket_grants_its_burst_at_once_then_refills_at_its_rate(
    rs_redis: Any, rs_namespace: str
) -> None:
    bucket = TokenBucket(rs_redis, "b", "10/s, burst=3", namespace=rs_namespace)
    assert [await bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    wait_s = await bucket.try_acquire()
    assert 0 < wait_s <= 0.1  # one token comes every 100 ms
    assert await bucket.try_acquire(3) > wait_s  # nothing was taken by the refused tries
    await asyncio.sleep(wait_s)
    assert await bucket.try_acquire() == 0.0
    # A full refill takes 300 ms: well after it, three at once again, not more.
    await asyncio.sleep(0.6)
    assert await bucket.try_acquire(3) == 0.0
    assert await bucket.try_acquire() > 0


async def test_reservations_queue_in_turn_and_acquire_waits_what_it_is_told(
    rs_redis: Any, rs_namespace: str
) -> None:
    bucket = TokenBucket(rs_redis, "q", "20/s", namespace=rs_namespace)  # burst 1: every 50 ms
    waits = [await bucket.reserve() for _ in range(5)]
    assert waits[0] == 0.0
    # Each reservation comes 50 ms after the previous one (less the time between the calls).
    for earlier, later in itertools.pairwise(waits):
        assert 0.03 < later - earlier <= 0.05 + 1e-6
    # A try does not jump the queue: it is told to come back after the reservations.
    assert await bucket.try_acquire() >= waits[-1]
    start = time.monotonic()
    waited = await bucket.acquire()
    assert waited > waits[-1]
    assert time.monotonic() - start >= waited


async def test_a_sliding_window_allows_its_count_in_any_window_and_no_more(
    rs_redis: Any, rs_namespace: str
) -> None:
    window = SlidingWindow(
        rs_redis, "w", "3/200ms, algorithm=sliding_window", namespace=rs_namespace
    )
    assert await window.try_acquire(2) == 0.0
    await asyncio.sleep(0.1)
    assert await window.try_acquire() == 0.0
    wait_s = await window.try_acquire()
    # The first two leave the window 200 ms after they came, about 100 ms from now.
    assert 0.05 < wait_s <= 0.1 + 1e-6
    await asyncio.sleep(wait_s)
    assert await window.try_acquire(2) == 0.0  # the first two left; the third is still in
    # The log forgets permits once their window has passed: it stays as small as the limit.
    assert await rs_redis.zcard(window.key) <= 3
    assert await window.try_acquire() > 0
    # Reserved permits take their turns in time order: the fourth and fifth ahead go after
    # the ones in the window leave.
    first, second = await window.reserve(), await window.reserve()
    assert 0 < first <= second <= 0.2 + 1e-6


@pytest.mark.parametrize("spec", ["40/s", "8/200ms, burst=4", "8/200ms, algorithm=sliding_window"])
async def test_two_clients_together_never_exceed_the_rate(
    rs_url: str, rs_namespace: str, spec: str
) -> None:
    """Four acquirers on two connections take 40 a second for 1.5 s; the times each was
    granted (the server's clock, once its wait is over) never put more in any window than the
    limit allows, and the shared limit is used up (not each client's own)."""
    clients = [client_from_url(rs_url), client_from_url(rs_url)]
    limit = RateLimit.parse(spec)
    granted: list[float] = []

    async def take(client: Any) -> None:
        bucket = limiter(client, "shared", limit, namespace=rs_namespace)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            await bucket.acquire()
            seconds, micros = await client.time()
            granted.append(int(seconds) + int(micros) / 1e6)

    try:
        await asyncio.gather(*(take(c) for c in clients * 2))
    finally:
        for c in clients:
            await c.aclose()
    granted.sort()
    span = granted[-1] - granted[0]
    # Used up: the four together got about the limit's rate, not four times it.
    assert len(granted) <= limit.max_at_once + (span + SLACK_S) * limit.per_second
    assert len(granted) >= 0.8 * span * limit.per_second
    # Never over, in any window of one period (the measured times lag the grants by a reply).
    for i, start in enumerate(granted):
        in_window = sum(1 for t in granted[i:] if t < start + limit.period_s - SLACK_S)
        allowed = limit.max_at_once + (limit.period_s - SLACK_S) * limit.per_second
        if limit.algorithm == "sliding_window":
            allowed = limit.count
        assert in_window <= allowed, (i, in_window, allowed)


async def test_each_limiter_is_one_hash_tagged_key_that_expires_when_idle(
    rs_redis: Any, rs_namespace: str
) -> None:
    await TokenBucket(rs_redis, "orders:billing", "100/s", namespace=rs_namespace).acquire()
    window = SlidingWindow(rs_redis, "w", "5/s, algorithm=sliding_window", namespace=rs_namespace)
    await window.acquire(2)
    bucket_key = f"{rs_namespace}:ratelimit:{{orders:billing}}"
    window_key = f"{rs_namespace}:ratelimit:{{w}}"
    assert sorted(await rs_redis.keys(f"{rs_namespace}:*")) == sorted(
        [bucket_key.encode(), window_key.encode()]
    )
    assert await rs_redis.type(bucket_key) == b"hash"
    assert await rs_redis.zcard(window_key) == 2
    assert 0 < await rs_redis.pttl(bucket_key) <= 1100  # full again after 10 ms
    assert 0 < await rs_redis.pttl(window_key) <= 2100


async def test_taking_more_than_fits_at_once_is_a_clear_error(
    rs_redis: Any, rs_namespace: str
) -> None:
    bucket = TokenBucket(rs_redis, "b", "10/s, burst=2", namespace=rs_namespace)
    with pytest.raises(InvalidArgument, match="raise the burst"):
        await bucket.acquire(3)
    with pytest.raises(InvalidArgument, match="1 to 2"):
        await bucket.try_acquire(0)
    with pytest.raises(InvalidArgument, match="algorithm=sliding_window"):
        SlidingWindow(rs_redis, "w", "10/s", namespace=rs_namespace)
    assert await rs_redis.keys(f"{rs_namespace}:*") == []
