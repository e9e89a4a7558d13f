"""Pipelined script calls against a real server: a server that lost its script cache (SCRIPT
FLUSH, as after a restart) gets the script loaded once, and a script that still is not found
after that is an error, not a loop."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from redis_streaming import Keys
from redis_streaming.mq.scripts import script
from redis_streaming.testing import RedisServer


def _acquire_calls(namespace: str, partitions: int) -> list[tuple[list[str], list[Any]]]:
    keys = Keys(namespace)
    return [([keys.lease("t", p, "g")], ["c1", 60_000]) for p in range(partitions)]


async def _calls(redis: Any, command: str) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_a_flushed_script_is_loaded_once_and_the_pipeline_sent_again(
    rs_server: RedisServer,
) -> None:
    redis = aioredis.Redis.from_url(rs_server.url)
    acquire = script("lease_acquire")
    calls = _acquire_calls("ns", 3)
    try:
        assert await acquire.run_pipelined(redis, calls) == [1, 1, 1]  # first use: not cached
        assert await acquire.run_pipelined(redis, calls) == [1, 1, 1]  # cached now
        await redis.script_flush()
        assert await acquire.run_pipelined(redis, calls) == [1, 1, 1]
        assert await _calls(redis, "script|load") == 2
        assert await _calls(redis, "evalsha") == 3 * 5  # 2 + 1 + 2 pipelines of 3 calls
        assert await acquire.run_pipelined(redis, []) == []
    finally:
        await redis.aclose()


async def test_a_second_noscript_is_raised_not_retried(rs_server: RedisServer) -> None:
    redis = aioredis.Redis.from_url(rs_server.url)
    lost = script("lease_acquire")
    lost.sha = "0" * 40  # the server never has this SHA, however often the source is loaded
    try:
        with pytest.raises(NoScriptError):
            await lost.run_pipelined(redis, _acquire_calls("ns", 3))
        assert await _calls(redis, "script|load") == 1
        assert await _calls(redis, "evalsha") == 2 * 3
        assert await redis.keys("*") == []
    finally:
        await redis.aclose()


@pytest.mark.cluster
async def test_a_flushed_script_is_reloaded_for_a_pipeline_over_every_node(
    rs_redis: Any, rs_namespace: str
) -> None:
    acquire = script("lease_acquire")
    calls = _acquire_calls(rs_namespace, 12)  # 12 partitions: on every node of a cluster
    await rs_redis.script_flush()
    assert await acquire.run_pipelined(rs_redis, calls) == [1] * 12
    await rs_redis.script_flush()
    assert await acquire.run_pipelined(rs_redis, calls) == [1] * 12
