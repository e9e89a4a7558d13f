"""DeadLetters: paging with ``before``, and ids checked before Redis sees them."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from redis_streaming import ConfigurationError, DeadLetters, InvalidArgument, Keys, MQOptions
from redis_streaming.mq.admin.dead_letters import validate_entry_id

BAD_IDS = ["", "nope", "1", "1-", "-1", "1-2-3", "18446744073709551616-0", "0-18446744073709551616",
           " 1-0", "1-0\n", "\u0661-0", "1-0;"]  # fmt: skip


async def _dead(redis: aioredis.Redis, namespace: str, n: int) -> list[str]:
    """``n`` dead letters of topic ``d`` alternating groups ``a`` and ``b``; their ids."""
    key = Keys(namespace).dlq("d")
    ids = []
    for i in range(n):
        fields = {"payload": f"m{i}", "content_type": "text/plain", "dlq_group": "ab"[i % 2],
                  "dlq_partition": "0", "dlq_reason": "rejected", "dlq_attempts": "1"}  # fmt: skip
        ids.append((await redis.xadd(key, fields)).decode())
    return ids


async def test_before_pages_through_every_entry_once(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    ids = await _dead(rs_redis, rs_namespace, 7)
    dlq = DeadLetters(rs_redis, fast_options)
    seen: list[str] = []
    before = None
    while True:
        page = await dlq.list("d", count=3, before=before)
        seen += [e.id for e in page]
        if len(page) < 3:
            break
        before = page[-1].id
    assert seen == ids[::-1]
    only_b = [e.id for e in await dlq.list("d", group="b", count=2, before=ids[5])]
    assert only_b == [ids[3], ids[1]]
    assert await dlq.list("d", before="0-0") == []
    assert await dlq.list("d", before="000-00") == []  # still 0-0 to Redis
    assert await dlq.list("d", before="18446744073709551615-18446744073709551615") != []


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_malformed_ids_are_refused_before_anything_changes(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions, bad: str
) -> None:
    ids = await _dead(rs_redis, rs_namespace, 2)
    dlq = DeadLetters(rs_redis, fast_options)
    with pytest.raises(ConfigurationError, match="invalid dead-letter id"):
        validate_entry_id(bad)
    with pytest.raises(ConfigurationError, match="invalid dead-letter id"):
        await dlq.get("d", bad)
    with pytest.raises(ConfigurationError, match="invalid dead-letter id"):
        await dlq.list("d", before=bad)
    with pytest.raises(ConfigurationError, match="invalid dead-letter id"):
        await dlq.replay("d", [ids[0], bad])
    with pytest.raises(ConfigurationError, match="invalid dead-letter id"):
        await dlq.purge("d", [ids[1], bad])
    assert await dlq.length("d") == 2


async def test_a_repeated_id_is_replayed_once(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    [first, _] = await _dead(rs_redis, rs_namespace, 2)
    dlq = DeadLetters(rs_redis, fast_options)
    assert await dlq.get("d", "0-0") is None
    assert await dlq.replay("d", [first, first, "1-0"]) == 1
    redeliver = Keys(rs_namespace).redeliver("d", 0, "a")
    assert await rs_redis.xlen(redeliver) == 1
    assert await dlq.length("d") == 1


def test_a_malformed_id_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="invalid dead-letter id"):
        validate_entry_id("nope")
