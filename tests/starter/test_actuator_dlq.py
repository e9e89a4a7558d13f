"""Dead-letter endpoints at their limits: the 1 KiB preview of a page (``payloadTruncated``),
at most 1,000 ids per replay, what a page has Redis send, and 503 (not 500) for ``/topics`` and
``/dlq`` when Redis stops answering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis_streaming import Keys
from redis_streaming.testing import RedisServer
from redis_streaming_starter import RedisStreamingApplication, Settings
from redis_streaming_starter.settings import ActuatorSettings
from tests.helpers import serving

TOKEN = "dlq-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KIB = 1024


@asynccontextmanager
async def _client(settings: Settings, url: str | None = None) -> AsyncIterator[Any]:
    actuator = ActuatorSettings(expose=["*"], token=TOKEN)
    update: dict[str, Any] = {"actuator": actuator}
    if url:
        update["redis"] = settings.redis.model_copy(update={"url": url})
    app = RedisStreamingApplication(settings=settings.model_copy(update=update))
    async with serving(app.asgi, "http://test/actuator") as http:
        yield app, http


def _dead(payload: bytes, content_type: str = "text/plain") -> dict[str, Any]:
    return {"payload": payload, "content_type": content_type, "dlq_group": "g",
            "dlq_partition": "0", "dlq_reason": "rejected", "dlq_attempts": "1",
            "dlq_error_type": "ValueError", "dlq_error": "no",
            "dlq_traceback": "Traceback\n" * 1000}  # fmt: skip


async def test_a_page_shows_1_kib_of_each_payload(settings: Settings) -> None:
    async with _client(settings) as (app, http):
        await http.post("/topics", json={"name": "t", "partitions": 1}, headers=AUTH)
        key = Keys(settings.mq.namespace).dlq("t")
        sizes = {"exact": KIB, "over": KIB + 1, "big": 300 * KIB}
        ids = {}
        for name, size in sizes.items():
            ids[name] = (await app.redis.xadd(key, _dead(b"a" * size))).decode()
        small_json = b'{"v": "' + b"j" * 1000 + b'"}'  # 1,010 bytes: whole, decoded
        ids["json"] = (await app.redis.xadd(key, _dead(small_json, "application/json"))).decode()
        long_json = b'{"v": "' + b"j" * KIB + b'"}'  # cut: shown as text, not JSON
        ids["long_json"] = (
            await app.redis.xadd(key, _dead(long_json, "application/json"))
        ).decode()
        euro = "€".encode() * 400  # 1,200 bytes: a cut inside a character is not shown
        ids["euro"] = (await app.redis.xadd(key, _dead(euro))).decode()

        page = (await http.get("/topics/t/dlq", params={"limit": 1000})).json()
        shown = {e["id"]: e for e in page["entries"]}
        view = {name: shown[i] for name, i in ids.items()}
        assert (view["exact"]["payload"], view["exact"]["payloadTruncated"]) == ("a" * KIB, False)
        assert (view["over"]["payload"], view["over"]["payloadTruncated"]) == ("a" * KIB, True)
        assert view["over"]["payloadSize"] == KIB + 1
        assert (len(view["big"]["payload"]), view["big"]["payloadSize"]) == (KIB, 300 * KIB)
        assert view["json"]["payload"] == {"v": "j" * 1000}
        assert (view["json"]["payloadEncoding"], view["json"]["payloadTruncated"]) == (
            "json",
            False,
        )
        assert view["long_json"]["payloadEncoding"] == "text"
        assert view["long_json"]["payload"] == long_json[:KIB].decode()
        assert view["euro"]["payload"] == "€" * 341  # 1,023 bytes: the 342nd is cut in two
        assert all(e["traceback"] is None for e in page["entries"])
        one = (await http.get(f"/topics/t/dlq/{ids['big']}")).json()
        assert (len(one["payload"]), one["payloadTruncated"]) == (300 * KIB, False)
        assert one["traceback"].startswith("Traceback")


async def test_a_replay_takes_at_most_1000_ids(settings: Settings) -> None:
    async with _client(settings) as (_, http):
        await http.post("/topics", json={"name": "t", "partitions": 1}, headers=AUTH)
        ids = [f"1-{n}" for n in range(1001)]
        too_many = await http.post("/topics/t/dlq/replay", json={"ids": ids}, headers=AUTH)
        assert too_many.status_code == 422
        assert "1000" in too_many.text
        ok = await http.post("/topics/t/dlq/replay", json={"ids": ids[:1000]}, headers=AUTH)
        assert ok.json() == {"replayed": 0}  # none of them is there
        purge = await http.delete("/topics/t/dlq", params={"ids": ids}, headers=AUTH)
        assert purge.status_code == 422


async def test_topics_and_dlq_answer_503_while_redis_is_down(
    settings: Settings, rs_server: RedisServer
) -> None:
    async with _client(settings, rs_server.url) as (_, http):
        assert (await http.post("/topics", json={"name": "t"}, headers=AUTH)).status_code == 201
        await asyncio.to_thread(rs_server.stop)
        for method, path in [
            ("GET", "/topics"),
            ("GET", "/topics/t"),
            ("GET", "/topics/t/dlq"),
            ("GET", "/topics/t/dlq/1-0"),
            ("POST", "/topics/t/dlq/replay"),
            ("DELETE", "/topics/t/dlq"),
        ]:
            body = {"all": True} if method == "POST" else None
            response = await http.request(method, path, json=body, headers=AUTH)
            assert response.status_code == 503, (method, path, response.text)
            assert "127.0.0.1" in response.json()["detail"]
        await asyncio.to_thread(rs_server.start)


async def test_a_replay_that_cannot_append_answers_409_and_keeps_the_dead_letter(
    settings: Settings,
) -> None:
    """A target key of the wrong type: 409 with what to do (not a 500), nothing lost."""
    async with _client(settings) as (app, http):
        await http.post("/topics", json={"name": "t", "partitions": 1}, headers=AUTH)
        keys = Keys(settings.mq.namespace)
        dead_id = (await app.redis.xadd(keys.dlq("t"), _dead(b"order-1"))).decode()
        target = keys.redeliver("t", 0, "g")
        await app.redis.set(target, "not a stream")

        failed = await http.post("/topics/t/dlq/replay", json={"all": True}, headers=AUTH)
        assert failed.status_code == 409, failed.text
        detail = failed.json()["detail"]
        assert target in detail
        assert "0 were replayed" in detail
        assert "must be a stream or absent" in detail
        listed = (await http.get("/topics/t/dlq")).json()["entries"]
        assert [e["id"] for e in listed] == [dead_id]

        await app.redis.delete(target)
        again = await http.post("/topics/t/dlq/replay", json={"all": True}, headers=AUTH)
        assert again.json() == {"replayed": 1}
        assert await app.redis.xlen(target) == 1
