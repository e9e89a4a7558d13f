"""Actuator endpoints for listeners (pause/resume), topics (admin) and dead letters, through
httpx against the real application, its lifespan and a real Redis server."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from dependency_injector import providers

from redis_streaming import DeadLetter, Keys, Message, Producer
from redis_streaming_starter import (
    Container,
    RedisStreamingApplication,
    Settings,
    listener,
    resolve,
)
from redis_streaming_starter.settings import ActuatorSettings
from tests.helpers import serving, wait_until

TOKEN = "s3cret-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": "Bearer nope"}


class Work:
    """Listeners of the test application: one that records, one that dead-letters until healed."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.handled: list[Any] = []
        self.healed = False

    @listener("work", group="workers", id="worker")
    async def work(self, body: str) -> None:
        self.seen.append(body)

    @listener("fragile", group="fragile", id="fragile")
    async def fragile(self, body: dict[str, int], message: Message) -> None:
        if not self.healed:
            raise DeadLetter("not yet")
        self.handled.append(body)


class WorkContainer(Container):
    work = providers.Singleton(Work)


def _settings(settings: Settings, **actuator: Any) -> Settings:
    values = {"expose": ["*"], "token": TOKEN, **actuator}
    return settings.model_copy(
        update={
            "actuator": ActuatorSettings.model_validate(values),
            "mq": settings.mq.model_copy(update={"default_partitions": 2}),
        }
    )


def _client(
    app: RedisStreamingApplication, start: bool = True
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return serving(app.asgi, "http://test/actuator", started=start)


async def _lag(http: httpx.AsyncClient, topic: str, group: str) -> int:
    response = await http.get(f"/topics/{topic}")
    assert response.status_code == 200, response.text
    return sum(g["lag"] for g in response.json()["groups"] if g["name"] == group)


async def test_pause_stops_consumption_and_resume_drains_it(settings: Settings) -> None:
    app = RedisStreamingApplication(settings=_settings(settings), container=WorkContainer)
    async with _client(app) as http:
        work: Work = await resolve(app.container.work)
        producer: Producer = await resolve(app.container.producer)

        async def owns_both() -> bool:
            body = (await http.get("/listeners")).json()
            return bool(body["listeners"]["worker"]["ownedPartitions"] == [0, 1])

        await wait_until(owns_both, 10, "the listener to own both partitions")
        await producer.send("work", "first")
        await wait_until(lambda: work.seen == ["first"], 10)
        listed = (await http.get("/listeners")).json()["listeners"]
        assert set(listed) == {"worker", "fragile"}
        worker = listed["worker"]
        assert worker["topic"] == "work"
        assert worker["group"] == "workers"
        assert worker["state"] == "running"
        assert worker["processed"] == 1
        assert worker["inFlight"] == 0
        assert worker["lastError"] is None
        assert worker["consumerId"] == app.consumer.consumer_id  # type: ignore[union-attr]

        response = await http.post("/listeners/worker", json={"state": "PAUSED"}, headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "paused"
        sent = 1

        async def lagging() -> bool:
            # The one read that may be in progress when the pause arrives can still take what
            # is there (held, not handled, until resumed); every message sent after it stays
            # unread.
            nonlocal sent
            await producer.send("work", f"m{sent}")
            sent += 1
            return await _lag(http, "work", "workers") >= 3

        await wait_until(lagging, 10, "lag to grow while paused")
        lag, seen = await _lag(http, "work", "workers"), len(work.seen)
        for i in range(5):
            await producer.send("work", f"late{i}")
        sent += 5
        await wait_until(lambda: _lag_is(http, lag + 5), 10, "lag to count the new messages")
        assert len(work.seen) == seen  # nothing consumed while paused
        paused = (await http.get("/listeners/worker")).json()
        assert paused["state"] == "paused"
        assert paused["ownedPartitions"] == [0, 1]  # pausing keeps the partitions

        response = await http.post("/listeners/worker", json={"state": "resumed"}, headers=AUTH)
        assert response.json()["state"] == "running"
        await wait_until(lambda: len(work.seen) == sent, 10, "the backlog to drain")
        assert await _lag(http, "work", "workers") == 0
        response = await http.post("/listeners/worker", json={"state": "Paused"}, headers=AUTH)
        assert response.json()["state"] == "paused"
        response = await http.post("/listeners/worker", json={"state": "running"}, headers=AUTH)
        assert response.json()["state"] == "running"

        for body in ({"state": "stopped"}, {"state": 3}, {}, {"state": ""}):
            response = await http.post("/listeners/worker", json=body, headers=AUTH)
            assert response.status_code == 422, body
        response = await http.get("/listeners/nobody")
        assert response.status_code == 404
        assert "'fragile', 'worker'" in response.json()["detail"]
        response = await http.post("/listeners/nobody", json={"state": "paused"}, headers=AUTH)
        assert response.status_code == 404
        for headers in ({}, WRONG):
            response = await http.post(
                "/listeners/worker", json={"state": "paused"}, headers=headers
            )
            assert response.status_code == 401
        assert (await http.get("/listeners/worker")).json()["state"] == "running"
        response = await http.delete("/topics/work", headers=AUTH)
        assert response.status_code == 409  # the listener would recreate it at once
        assert "worker" in response.json()["detail"]


async def _lag_is(http: httpx.AsyncClient, expected: int) -> bool:
    return await _lag(http, "work", "workers") == expected


async def test_mutations_need_a_configured_token_and_reads_need_a_running_app(
    settings: Settings,
) -> None:
    app = RedisStreamingApplication(settings=_settings(settings, token=None))
    async with _client(app, start=False) as http:
        for method, path, body in [
            ("POST", "/listeners/worker", {"state": "paused"}),
            ("POST", "/topics", {"name": "t", "partitions": 1}),
            ("DELETE", "/topics/t", None),
            ("POST", "/topics/t/dlq/replay", {"all": True}),
            ("DELETE", "/topics/t/dlq", None),
        ]:
            response = await http.request(method, path, json=body)
            assert response.status_code == 403, (method, path)
            assert "REDIS_STREAMING_ACTUATOR__TOKEN" in response.json()["detail"]
        for path in ("/listeners", "/listeners/worker", "/topics", "/topics/t", "/topics/t/dlq"):
            response = await http.get(path)
            assert response.status_code == 503, path
            assert "not" in response.json()["detail"]
    assert app.redis is None  # the endpoints never connected by themselves


async def test_unexposed_endpoints_are_not_served(settings: Settings) -> None:
    app = RedisStreamingApplication(settings=_settings(settings, expose=["health"]))
    async with _client(app, start=False) as http:
        for path in ("/listeners", "/listeners/worker", "/topics", "/topics/t", "/topics/t/dlq"):
            assert (await http.get(path)).status_code == 404, path
    app = RedisStreamingApplication(settings=_settings(settings, expose=["*"], exclude=["dlq"]))
    async with _client(app, start=False) as http:
        assert (await http.get("/topics")).status_code == 503  # served, not started
        assert (await http.get("/topics/t/dlq")).status_code == 404


async def test_topics_list_describe_create_delete(settings: Settings) -> None:
    app = RedisStreamingApplication(settings=_settings(settings))
    async with _client(app) as http:
        assert (await http.get("/topics")).json() == {"topics": []}
        body = {"name": "orders.v1", "partitions": 3, "retentionMaxLen": 1000}
        response = await http.post("/topics", json=body, headers=AUTH)
        assert response.status_code == 201, response.text
        assert response.json()["partitions"] == 3
        assert response.json()["retentionMaxLen"] == 1000
        assert (await http.post("/topics", json=body, headers=AUTH)).status_code == 200
        snake = {"name": "orders.v1", "partitions": 3, "retention_max_len": 1000}
        assert (await http.post("/topics", json=snake, headers=AUTH)).status_code == 200
        response = await http.post("/topics", json={**body, "partitions": 5}, headers=AUTH)
        assert response.status_code == 409
        assert "add_partitions" in response.json()["detail"]
        response = await http.post("/topics", json={"name": "defaults"}, headers=AUTH)
        assert response.json()["partitions"] == app.settings.mq.default_partitions

        producer: Producer = await resolve(app.container.producer)
        await producer.send("orders.v1", {"id": 1}, partition=1)
        await producer.send("orders.v1", {"id": 2}, partition=1)
        topics = (await http.get("/topics")).json()["topics"]
        assert [(t["name"], t["partitions"]) for t in topics] == [
            ("defaults", app.settings.mq.default_partitions),
            ("orders.v1", 3),
        ]
        info = (await http.get("/topics/orders.v1")).json()
        assert [p["length"] for p in info["partitions"]] == [0, 2, 0]
        assert info["partitions"][1]["firstId"] is not None
        assert info["partitions"][0]["lastId"] is None
        assert info["dlqLength"] == 0
        assert info["retentionMaxLen"] == 1000
        assert info["groups"] == []

        for name in ("bad name", "a:b", "x" * 201, "ünï", "{t}"):
            response = await http.post("/topics", json={"name": name}, headers=AUTH)
            assert response.status_code == 400, name
            assert "invalid topic name" in response.json()["detail"]
            assert (await http.get(f"/topics/{name}")).status_code in (400, 404), name
        assert (await http.get("/topics/a%3Ab")).status_code == 400
        for bad in ({"name": "t", "partitions": 0}, {"name": "t", "partitions": 10**30},
                    {"name": "t", "retentionMaxLen": -1}, {"partitions": 1}, [], "x"):  # fmt: skip
            assert (await http.post("/topics", json=bad, headers=AUTH)).status_code == 422, bad
        response = await http.get("/topics/nope")
        assert response.status_code == 404
        assert "GET /topics lists the topics" in response.json()["detail"]

        for headers in ({}, WRONG):
            assert (await http.post("/topics", json=body, headers=headers)).status_code == 401
            assert (await http.delete("/topics/orders.v1", headers=headers)).status_code == 401
        response = await http.delete("/topics/orders.v1", headers=AUTH)
        assert response.status_code == 204
        assert (await http.delete("/topics/orders.v1", headers=AUTH)).status_code == 404
        assert (await http.get("/topics/orders.v1")).status_code == 404
        assert [t["name"] for t in (await http.get("/topics")).json()["topics"]] == ["defaults"]
        keys = Keys(settings.mq.namespace)
        assert not [k async for k in app.redis.scan_iter(match=f"{keys.dlq('orders.v1')}*")]
        assert (await http.delete("/topics/bad%20name", headers=AUTH)).status_code == 400


async def test_dead_letters_browse_get_replay_purge(settings: Settings) -> None:
    app = RedisStreamingApplication(settings=_settings(settings), container=WorkContainer)
    async with _client(app) as http:
        work: Work = await resolve(app.container.work)
        producer: Producer = await resolve(app.container.producer)
        for n in range(4):
            await producer.send("fragile", {"n": n})
        await producer.send("fragile", "plain text")
        await producer.send("fragile", b"\xff\x00")

        async def all_dead() -> bool:
            return bool((await http.get("/topics/fragile/dlq")).json()["total"] == 6)

        await wait_until(all_dead, 10, "six dead letters")
        pages, after = [], None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"after": after} if after else {})}
            response = await http.get("/topics/fragile/dlq", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            pages.append(page["entries"])
            after = page["next"]
            if after is None:
                break
        assert [len(p) for p in pages] == [2, 2, 2]
        entries = [e for p in pages for e in p]
        ids = [e["id"] for e in entries]
        assert len(set(ids)) == 6
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))), reverse=True)
        by_payload = {repr(e["payload"]): e for e in entries}
        blob, text = by_payload[repr("/wA=")], by_payload[repr("plain text")]
        assert (blob["payloadEncoding"], blob["reason"], blob["payloadSize"]) == (
            "base64",
            "undecodable",
            2,
        )
        assert (text["payloadEncoding"], text["reason"]) == ("text", "undecodable")
        first = by_payload[repr({"n": 0})]
        assert first["payloadEncoding"] == "json"
        assert (first["group"], first["reason"], first["error"]) == (
            "fragile",
            "rejected",
            "not yet",
        )
        assert first["attempts"] == 1
        assert text["errorType"] == "DecodeError"
        assert first["originId"]
        assert first["traceback"] is None  # only when one entry is fetched
        assert first["payloadTruncated"] is False
        response = await http.get(f"/topics/fragile/dlq?group=fragile&limit=1000&after={ids[-2]}")
        assert [e["id"] for e in response.json()["entries"]] == [ids[-1]]
        assert response.json()["next"] is None
        response = await http.get("/topics/fragile/dlq?group=other")
        assert response.json()["entries"] == []
        assert (await http.get("/topics/fragile/dlq?after=0-0")).json()["entries"] == []

        one = (await http.get(f"/topics/fragile/dlq/{first['id']}")).json()
        assert one["payload"] == {"n": 0}
        assert one["traceback"] == ""  # DeadLetter raised: a reason, no traceback
        full = (await http.get(f"/topics/fragile/dlq/{text['id']}")).json()
        assert "DecodeError" in full["traceback"]
        for bad in ("nope", "1", "1-2-3", "18446744073709551616-0", "-1-0", "\uff11-0"):
            response = await http.get(f"/topics/fragile/dlq/{bad}")
            assert response.status_code == 400, bad
            assert "invalid dead-letter id" in response.json()["detail"]
            assert (await http.get("/topics/fragile/dlq", params={"after": bad})).status_code == 400
        assert (await http.get("/topics/fragile/dlq/1-0")).status_code == 404
        assert (await http.get("/topics/unknown/dlq")).status_code == 404
        assert (await http.get("/topics/bad%20name/dlq")).status_code == 400
        for query in ("limit=0", "limit=1001", "limit=x", "limit=99999999999999999999999"):
            assert (await http.get(f"/topics/fragile/dlq?{query}")).status_code == 422, query
        response = await http.get("/topics/fragile/dlq?group=bad%20group")
        assert response.status_code == 400
        assert "invalid group name" in response.json()["detail"]

        replay = "/topics/fragile/dlq/replay"
        for headers in ({}, WRONG):
            assert (await http.post(replay, json={"all": True}, headers=headers)).status_code == 401
            assert (await http.delete("/topics/fragile/dlq", headers=headers)).status_code == 401
        for bad_body in ({}, {"ids": [first["id"]], "all": True}, {"group": "fragile"}):
            response = await http.post(replay, json=bad_body, headers=AUTH)
            assert response.status_code == 400, bad_body
        assert (await http.post(replay, json={"ids": []}, headers=AUTH)).status_code == 422
        response = await http.post(replay, json={"ids": ["bad"]}, headers=AUTH)
        assert response.status_code == 400

        response = await http.delete(
            "/topics/fragile/dlq", params={"ids": [blob["id"], text["id"]]}, headers=AUTH
        )
        assert response.json() == {"purged": 2}
        work.healed = True
        response = await http.post(
            replay, json={"ids": [first["id"], first["id"], "1-0"]}, headers=AUTH
        )
        assert response.json() == {"replayed": 1}
        await wait_until(lambda: work.handled == [{"n": 0}], 10, "the replayed message")
        response = await http.post(replay, json={"all": True, "group": "other"}, headers=AUTH)
        assert response.json() == {"replayed": 0}
        response = await http.post(replay, json={"all": True, "group": "fragile"}, headers=AUTH)
        assert response.json() == {"replayed": 3}
        await wait_until(lambda: len(work.handled) == 4, 10, "the replayed messages")
        assert sorted(h["n"] for h in work.handled) == [0, 1, 2, 3]
        assert (await http.get("/topics/fragile/dlq")).json()["total"] == 0

        work.healed = False
        await producer.send("fragile", {"n": 4})
        await producer.send("fragile", {"n": 5})

        async def two_dead() -> bool:
            return bool((await http.get("/topics/fragile/dlq")).json()["total"] == 2)

        await wait_until(two_dead, 10, "two new dead letters")
        response = await http.delete("/topics/fragile/dlq", headers=AUTH)
        assert response.json() == {"purged": 2}
        assert (await http.get("/topics/fragile/dlq")).json()["total"] == 0
        response = await http.delete("/topics/fragile/dlq", params={"ids": "bad"}, headers=AUTH)
        assert response.status_code == 400
        assert (await http.delete("/topics/unknown/dlq", headers=AUTH)).status_code == 404


async def test_odd_input_never_causes_a_server_error(settings: Settings) -> None:
    app = RedisStreamingApplication(settings=_settings(settings), container=WorkContainer)
    async with _client(app) as http:
        await http.post("/topics", json={"name": "t"}, headers=AUTH)
        odd = [
            "%00",
            "..",
            "%20",
            "a%2Fb",
            "%F0%9F%92%A5",
            "x" * 5000,
            "-",
            "0-0",
            "000-0",
            "%25",
            "+",
        ]
        for part in odd:
            for method, path in [
                ("GET", f"/listeners/{part}"),
                ("GET", f"/topics/{part}"),
                ("GET", f"/topics/{part}/dlq"),
                ("GET", f"/topics/t/dlq/{part}"),
                ("GET", f"/topics/t/dlq?after={part}&group={part}"),
                ("DELETE", f"/topics/{part}"),
                ("DELETE", f"/topics/t/dlq?ids={part}"),
            ]:
                response = await http.request(method, path, headers=AUTH)
                assert response.status_code < 500, (method, path, response.text)
        for partitions in (True, "2", 2.5, None, [], {}):
            body = {"name": "u", "partitions": 2, "retentionMaxLen": partitions}
            response = await http.post("/topics", json=body, headers=AUTH)
            assert response.status_code == 422, partitions  # booleans and strings are not counts
        body = {"name": "u", "partitions": 2.0, "retentionMaxLen": 10.0}
        assert (await http.post("/topics", json=body, headers=AUTH)).status_code == 201
        assert (await http.get("/topics/t/dlq/replay")).status_code == 405
        for body in (
            {"ids": ["0-0", "18446744073709551615-18446744073709551615"]},
            {"all": True, "group": ""},
            {"all": "yes"},
            {"ids": None, "all": False},
        ):
            response = await http.post("/topics/t/dlq/replay", json=body, headers=AUTH)
            assert response.status_code < 500, (body, response.text)
