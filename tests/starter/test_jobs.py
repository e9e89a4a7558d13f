"""``@job`` in the starter: jobs built from the container, started after the listeners and
stopped before them; ``runtime`` settings and per-job overrides; ``/actuator/jobs`` agrees with
Redis; pause, resume, stop, start and reset through the actuator (with the token); the
``runtime`` health component; the runtime's metrics in ``/actuator/prometheus``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from redis_streaming import ConfigurationError, JobCatalog, Producer, StateReader
from redis_streaming.mq.keys import Keys
from redis_streaming_starter import RedisStreamingApplication, Settings
from tests.helpers import fast_settings, serving, wait_until
from tests.starter.apps.jobs_app import app as jobs_app
from tests.starter.apps.jobs_app.app import JobsContainer

TOKEN = "jobs-s3cret-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PACKAGE = "tests.starter.apps.jobs_app"


def _settings(url: str, namespace: str, **runtime: Any) -> Settings:
    return fast_settings(
        url,
        namespace,
        app={"name": "jobsapp"},
        mq={"listener_packages": [PACKAGE], "default_partitions": 2},
        actuator={"expose": ["*"], "token": TOKEN, "show_details": "always"},
        runtime={"batch_size": 20, "retry_backoff_ms": 10, **runtime},
    )


def _app(settings: Settings) -> RedisStreamingApplication:
    return RedisStreamingApplication(settings=settings, container=JobsContainer)


async def _send(app: RedisStreamingApplication, *words: str) -> None:
    producer: Producer = await app.container.producer()
    for w in words:
        await producer.send("words", w, key=w)


async def _counted(http: httpx.AsyncClient, n: int) -> dict[str, Any]:
    """Wait until the job's input is all committed; returns /actuator/jobs/wordcount."""
    detail: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal detail
        detail = (await http.get("/actuator/jobs/wordcount")).json()
        stages = detail["stageDetails"]
        return (
            len(stages) == 2
            and all(s["lag"] == 0 for s in stages)
            and all(p["pending"] == 0 for s in stages for p in s["partitions"])
            and sum(s["recordsIn"] for s in stages[:1]) >= n
        )

    await wait_until(done, what="the job to commit its input")
    return detail


async def test_jobs_endpoint_agrees_with_redis(rs_server_url: str, rs_namespace: str) -> None:
    jobs_app.seen.clear()
    app = _app(_settings(rs_server_url, rs_namespace))
    async with serving(app.asgi) as http:
        await _send(app, "a", "b", "a")
        detail = await _counted(http, 3)
        await wait_until(lambda: len(jobs_app.seen) == 3, what="the listener to print 3 lines")
        assert sorted(jobs_app.seen) == ["a=1", "a=2", "b=1"]  # the separator was injected
        listing = (await http.get("/actuator/jobs")).json()
        assert listing["jobs"]["wordcount"]["state"] == "running"
        assert listing["jobs"]["wordcount"]["stages"] == ["wordcount.s0", "wordcount.s1"]
        counting = detail["stageDetails"][1]
        [store] = counting["stores"]
        state = await StateReader(app.redis, app.settings.mq).items("wordcount", "counts")
        assert state == {"a": 2, "b": 1}
        assert store["keys"] == len(state)
        assert store["bytes"] > 0
        owned = {
            p["partition"] for p in counting["partitions"] if p["owner"] == detail["consumerId"]
        }
        assert owned == set(counting["ownedPartitions"]) == {0, 1}
        for p in counting["partitions"]:  # the watermark is the committed max event time
            task = Keys(app.settings.mq.namespace)
            raw = await app.redis.hget(
                f"{task.namespace}:task:{{wordcount.s1.repartition:{p['partition']}}}:wordcount.s1",
                "max_ts",
            )
            assert p["watermark"] == (None if raw is None else int(raw))
        health = (await http.get("/actuator/health", headers=AUTH)).json()
        assert health["components"]["runtime"]["status"] == "UP"
        assert health["components"]["runtime"]["details"]["jobs"]["wordcount"]["state"] == "running"


async def test_pause_resume_stop_and_reset(rs_server_url: str, rs_namespace: str) -> None:
    app = _app(_settings(rs_server_url, rs_namespace))
    async with serving(app.asgi) as http:
        await _send(app, "a")
        await _counted(http, 1)
        for bad in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
            assert (
                await http.post("/actuator/jobs/wordcount", json={"state": "paused"}, headers=bad)
            ).status_code == 401
            assert (
                await http.delete("/actuator/jobs/wordcount/state", headers=bad)
            ).status_code == 401
        r = await http.post("/actuator/jobs/wordcount", json={"state": "paused"}, headers=AUTH)
        assert r.json()["state"] == "paused"
        await _send(app, "a", "a")

        async def lagging() -> bool:
            detail = (await http.get("/actuator/jobs/wordcount")).json()
            return detail["stageDetails"][0]["lag"] >= 1

        await wait_until(lagging, what="lag to build up while paused")
        r = await http.post("/actuator/jobs/wordcount", json={"state": "RUNNING"}, headers=AUTH)
        assert r.json()["state"] == "running"
        await _counted(http, 3)
        reader = StateReader(app.redis, app.settings.mq)
        await wait_until(
            lambda: _items(reader),
            what="state a=3",
        )
        r = await http.delete("/actuator/jobs/wordcount/state", headers=AUTH)
        assert r.status_code == 409
        assert "stop it first" in r.json()["detail"]
        r = await http.post("/actuator/jobs/wordcount", json={"state": "stopped"}, headers=AUTH)
        assert r.json()["state"] == "stopped"
        assert r.json()["owners"] == []
        r = await http.delete("/actuator/jobs/wordcount/state", headers=AUTH)
        assert r.status_code == 200
        assert r.json()["groupsDestroyed"] > 0
        assert await reader.items("wordcount", "counts") == {}
        r = await http.post("/actuator/jobs/wordcount", json={"state": "running"}, headers=AUTH)
        assert r.json()["state"] == "running"
        await _counted(http, 3)  # read again from the start: a counted 3 times from zero

        async def recounted() -> bool:
            return await reader.items("wordcount", "counts") == {"a": 3}

        await wait_until(recounted, what="the job to count its input again")


async def _items(reader: StateReader) -> bool:
    return await reader.items("wordcount", "counts") == {"a": 3}


async def test_disabled_job_and_overrides(rs_server_url: str, rs_namespace: str) -> None:
    settings = _settings(
        rs_server_url, rs_namespace, jobs={"WordCount": {"enabled": False, "batch_size": 7}}
    )
    app = _app(settings)
    async with serving(app.asgi) as http:
        detail = (await http.get("/actuator/jobs/wordcount")).json()
        assert detail["state"] == "disabled"
        r = await http.post("/actuator/jobs/wordcount", json={"state": "running"}, headers=AUTH)
        assert r.status_code == 409
        assert "enabled=false" in r.json()["detail"]
        assert app.jobs.get("wordcount").options.batch_size == 7
        assert await JobCatalog(app.redis, app.settings.mq).names() == []  # it never ran


async def test_settings_for_no_job_stop_startup(rs_server_url: str, rs_namespace: str) -> None:
    app = _app(_settings(rs_server_url, rs_namespace, jobs={"wordcont": {"enabled": False}}))
    try:
        with pytest.raises(ConfigurationError, match="'wordcont' but the application has no"):
            await app.start()
    finally:
        await app.stop()


async def test_bad_runtime_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, rs_server_url: str
) -> None:
    from redis_streaming_starter import load_settings

    monkeypatch.setenv("REDIS_STREAMING_RUNTIME__BATCH_SIZE", "0")
    with pytest.raises(ConfigurationError, match="REDIS_STREAMING_RUNTIME__BATCH_SIZE='0'"):
        load_settings(redis={"url": rs_server_url})


async def test_runtime_metrics_in_prometheus(rs_server_url: str, rs_namespace: str) -> None:
    app = _app(_settings(rs_server_url, rs_namespace))
    async with serving(app.asgi) as http:
        await _send(app, "a", "b")
        await _counted(http, 2)
        samples: list[Any] = []

        async def counted_in_prometheus() -> bool:  # the tasks add counts twice a second
            nonlocal samples
            text = (await http.get("/actuator/prometheus")).text
            families = {f.name: f for f in text_string_to_metric_families(text)}
            records_in = families.get("redis_streaming_runtime_records_in")
            samples = (
                [s for s in records_in.samples if s.name.endswith("_total")] if records_in else []
            )
            return sum(s.value for s in samples if s.labels["stage"] == "s0") == 2

        await wait_until(counted_in_prometheus, what="records in, in /actuator/prometheus")
        assert {s.labels["stage"] for s in samples} == {"s0", "s1"}
        assert {s.labels["job"] for s in samples} == {"wordcount"}
        assert {"job", "stage", "topic", "partition"} <= set(samples[0].labels)
        assert sum(s.value for s in samples if s.labels["stage"] == "s0") == 2
