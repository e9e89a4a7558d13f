"""DeadLetters.page: what one page has Redis send is bounded (payloads cut on the server, a
byte budget, a bound on the entries read), and a group-filtered walk resumes from ``next``."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from redis_streaming import DeadLetters, Keys, MQOptions
from redis_streaming.mq.admin.dead_letters import PREVIEW_BYTES
from redis_streaming.testing import RedisServer, client_from_url
from tests.helpers import fast_mq

MB = 1024 * 1024


def _fields(i: int, payload: bytes, group: str = "g", **extra: Any) -> dict[str, Any]:
    return {"payload": payload, "content_type": "text/plain", "dlq_group": group,
            "dlq_partition": "0", "dlq_reason": "max_attempts", "dlq_attempts": "3",
            "dlq_error_type": "ValueError", "dlq_error": f"boom {i}",
            "dlq_traceback": "Traceback ...\n" * 5000, **extra}  # fmt: skip


async def _sent(redis: Any) -> int:
    """Bytes the server has sent to its clients so far (INFO stats)."""
    return int((await redis.info("stats"))["total_net_output_bytes"])


async def test_a_page_of_large_dead_letters_sends_only_their_start(rs_server: RedisServer) -> None:
    """64 dead letters of 1 MB each: a page of all of them sends kilobytes, not 64 MB, and
    still tells each payload's full size; one entry, fetched by id, comes whole."""
    redis = client_from_url(rs_server.url)
    key = Keys("rs").dlq("big")
    ids = []
    for i in range(64):
        body = bytes([65 + i % 26]) * MB
        ids.append((await redis.xadd(key, _fields(i, body))).decode())
    dlq = DeadLetters(redis, fast_mq("rs"))
    before = await _sent(redis)
    page = await dlq.page("big", count=1000)
    sent = await _sent(redis) - before
    assert [e.id for e in page.entries] == ids[::-1]
    assert page.next is None
    first = page.entries[0]
    assert first.payload == bytes([65 + 63 % 26]) * PREVIEW_BYTES
    assert (first.payload_size, first.payload_truncated) == (MB, True)
    assert first.traceback == ""
    assert first.error == "boom 63"
    assert sent < 64 * (PREVIEW_BYTES + 2048), f"Redis sent {sent} bytes for one page"
    whole = await dlq.get("big", ids[0])
    assert whole is not None
    assert (len(whole.payload), whole.payload_truncated) == (MB, False)
    assert whole.traceback.startswith("Traceback")
    await redis.aclose()


@pytest.mark.cluster
async def test_the_byte_budget_ends_a_page_early_with_next(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    key = Keys(rs_namespace).dlq("hdr")
    headers = '{"h": "' + "x" * 6000 + '"}'
    ids = [
        (await rs_redis.xadd(key, _fields(i, b"p", headers=headers))).decode() for i in range(10)
    ]
    dlq = DeadLetters(rs_redis, fast_options)
    page = await dlq.page("hdr", count=10, max_bytes=20_000)
    assert 1 <= len(page.entries) < 10
    assert page.next == page.entries[-1].id
    rest = await dlq.page("hdr", count=10, before=page.next)
    assert [e.id for e in page.entries + rest.entries] == ids[::-1]
    assert rest.next is None


@pytest.mark.cluster
async def test_a_group_filter_walks_in_bounded_steps_and_resumes(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    """Three of group b under 1,200 of group a: each call reads at most max_scan entries and
    says where it stopped; following ``next`` finds all three, newest first, once."""
    key = Keys(rs_namespace).dlq("walk")
    pipe = rs_redis.pipeline(transaction=False)
    for i in range(1203):
        pipe.xadd(key, _fields(i, b"x", group="b" if i < 3 else "a", dlq_traceback=""))
    ids = [i.decode() for i in await pipe.execute()]
    dlq = DeadLetters(rs_redis, fast_options)
    found: list[str] = []
    before, calls = None, 0
    while True:
        page = await dlq.page("walk", group="b", count=10, before=before, max_scan=500)
        calls += 1
        found += [e.id for e in page.entries]
        assert all(e.group == "b" for e in page.entries)
        if page.next is None:
            break
        before = page.next
    assert found == ids[:3][::-1]
    assert calls == 3  # 500 + 500 + the last 203 with the three matches


@pytest.mark.cluster
async def test_paging_without_a_filter_lists_every_entry_once(
    rs_redis: aioredis.Redis, rs_namespace: str, fast_options: MQOptions
) -> None:
    key = Keys(rs_namespace).dlq("all")
    ids = [(await rs_redis.xadd(key, _fields(i, b"m"))).decode() for i in range(9)]
    dlq = DeadLetters(rs_redis, fast_options)
    seen, before = [], None
    while True:
        page = await dlq.page("all", count=4, before=before)
        seen += [e.id for e in page.entries]
        if page.next is None:
            break
        before = page.next
    assert seen == ids[::-1]
    assert (await dlq.page("all", count=9)).next is None  # the oldest was read: the end
    assert (await dlq.page("all", count=3, before="0-0")).entries == []
    assert (await dlq.page("none")).entries == []
