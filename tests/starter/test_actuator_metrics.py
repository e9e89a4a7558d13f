"""/actuator/prometheus and /actuator/metrics against a running application and a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from redis_streaming import Admin, Producer
from redis_streaming_starter import RedisStreamingApplication, Settings, resolve
from tests.helpers import wait_until
from tests.starter.apps import metered

TOPIC, GROUP = "metered", "meters"


def _settings(settings: Settings, **actuator: Any) -> Settings:
    data = settings.model_dump()
    data["mq"]["default_partitions"] = 3
    data["mq"]["retry"] = {"initial_backoff_s": 0.05, "max_backoff_s": 0.1}
    data["mq"]["delayed_interval_ms"] = 20
    data["actuator"] = {"expose": ["*"], **actuator}
    data["metrics"] = {"gauge_interval_s": 60, "gauge_max_age_s": 0}
    return Settings.model_validate(data)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[RedisStreamingApplication]:
    metered.handled.clear()
    application = RedisStreamingApplication(
        settings=_settings(settings), listener_packages=["tests.starter.apps.metered"]
    )
    async with application.lifespan():
        yield application


def _client(app: RedisStreamingApplication) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app.asgi), base_url="http://t")


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text → sample name → [(labels, value)]."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


async def wait_acked(http: httpx.AsyncClient, n: int) -> None:
    """Acks are confirmed with the next read, a moment after handling: poll the counter."""

    async def acked() -> bool:
        found = samples((await http.get("/actuator/prometheus")).text)
        return total(found, "redis_streaming_messages_acked_total") == n

    await wait_until(acked, 10, f"acked to reach {n}")


def total(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(
        v for lab, v in found.get(name, []) if all(lab.get(k) == x for k, x in labels.items())
    )


async def test_prometheus_shows_counters_histogram_and_gauges_matching_describe(
    app: RedisStreamingApplication,
) -> None:
    producer: Producer = await resolve(app.container.producer)
    modes = ["ok"] * 20 + ["retry_once"] * 4 + ["dead"] * 2
    for n, mode in enumerate(modes):
        await producer.send(TOPIC, {"n": n, "mode": mode}, key=f"k{n}")
    await wait_until(lambda: len(metered.handled) == 24, 15)

    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    async with _client(app) as http:

        async def all_acked() -> bool:  # confirmed with the next read, a moment after handling
            nonlocal found
            resp = await http.get("/actuator/prometheus")
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
            found = samples(resp.text)
            return total(found, "redis_streaming_messages_acked_total", topic=TOPIC) == 24

        await wait_until(all_acked, 5, "24 acks counted")

    assert total(found, "redis_streaming_messages_produced_total", topic=TOPIC) == 26
    assert total(found, "redis_streaming_messages_consumed_total", topic=TOPIC, group=GROUP) == 30
    assert total(found, "redis_streaming_messages_acked_total", topic=TOPIC, group=GROUP) == 24
    assert total(found, "redis_streaming_messages_retried_total", topic=TOPIC, group=GROUP) == 4
    assert (
        total(found, "redis_streaming_messages_dead_lettered_total", topic=TOPIC, reason="rejected")
        == 2
    )
    # every counter sample carries topic, partition and group labels
    for name in ("consumed", "acked", "retried", "dead_lettered"):
        for labels, _ in found[f"redis_streaming_messages_{name}_total"]:
            assert {"topic", "partition", "group", "consumer"} <= labels.keys()
    assert total(found, "redis_streaming_handler_duration_seconds_count", topic=TOPIC) == 30
    buckets = {lab["le"] for lab, _ in found["redis_streaming_handler_duration_seconds_bucket"]}
    assert "0.005" in buckets  # seconds buckets, not the SDK's millisecond defaults
    assert total(found, "redis_streaming_dlq_length", topic=TOPIC) == 2

    # pause the listener, produce more: lag and pending gauges equal describe_topic
    assert app.consumer is not None
    app.consumer.pause(TOPIC, GROUP)
    for n in range(30, 45):
        await producer.send(TOPIC, {"n": n, "mode": "ok"}, key=f"k{n}")
    admin: Admin = await resolve(app.container.admin)
    async with _client(app) as http:
        found = samples((await http.get("/actuator/prometheus")).text)
    info = await admin.describe_topic(TOPIC)
    lag_total = 0
    for part in info.partitions:
        group = next(g for g in part.groups if g.name == GROUP)
        labels = {"topic": TOPIC, "partition": str(part.partition), "group": GROUP}
        assert total(found, "redis_streaming_partition_lag", **labels) == group.lag
        assert total(found, "redis_streaming_partition_pending", **labels) == group.pending
        assert total(
            found, "redis_streaming_partition_length", topic=TOPIC, partition=str(part.partition)
        ) == (part.length)
        lag_total += group.lag
    assert lag_total >= 10  # at most one batch per partition was read before the pause took hold
    app.consumer.resume(TOPIC, GROUP)
    await wait_until(lambda: len(metered.handled) == 39, 15)


async def test_metrics_names_and_one_metric_in_spring_shape(app: RedisStreamingApplication) -> None:
    producer: Producer = await resolve(app.container.producer)
    for n in range(6):
        await producer.send(TOPIC, {"n": n, "mode": "ok"}, partition=n % 2)
    await wait_until(lambda: len(metered.handled) == 6, 15)
    async with _client(app) as http:

        async def acked() -> float:
            resp = await http.get("/actuator/metrics/redis_streaming.messages.acked")
            return float(resp.json()["measurements"][0]["value"]) if resp.status_code == 200 else 0

        async def six_acked() -> bool:  # confirmed with the next read, a moment after handling
            return await acked() == 6

        await wait_until(six_acked, 5, "6 acks counted")
        names = (await http.get("/actuator/metrics")).json()["names"]
        assert "redis_streaming.messages.acked" in names
        assert "redis_streaming.partition.lag" in names
        body = (await http.get("/actuator/metrics/redis_streaming.messages.acked")).json()
        assert body["name"] == "redis_streaming.messages.acked"
        assert body["measurements"] == [{"statistic": "COUNT", "value": 6.0}]
        tags = {t["tag"]: t["values"] for t in body["availableTags"]}
        assert tags["topic"] == [TOPIC]
        assert tags["partition"] == ["0", "1"]
        one = await http.get(
            "/actuator/metrics/redis_streaming.messages.acked", params={"tag": "partition:1"}
        )
        assert one.json()["measurements"][0]["value"] == 3.0
        assert "partition" not in {t["tag"] for t in one.json()["availableTags"]}
        timer = (await http.get("/actuator/metrics/redis_streaming.handler.duration")).json()
        assert timer["baseUnit"] == "seconds"
        stats = {m["statistic"]: m["value"] for m in timer["measurements"]}
        assert stats["COUNT"] == 6
        assert stats["TOTAL_TIME"] >= 0
        assert 0 <= stats["MAX"] <= stats["TOTAL_TIME"]
        missing = await http.get("/actuator/metrics/no.such.metric")
        assert missing.status_code == 404
        assert "/actuator/metrics" in missing.json()["detail"]
        bad = await http.get(
            "/actuator/metrics/redis_streaming.messages.acked", params={"tag": "nocolon"}
        )
        assert bad.status_code == 400
        assert "KEY:VALUE" in bad.json()["detail"]


async def test_prometheus_filters_names_and_speaks_openmetrics(
    app: RedisStreamingApplication,
) -> None:
    producer: Producer = await resolve(app.container.producer)
    await producer.send(TOPIC, {"n": 1, "mode": "ok"})
    await wait_until(lambda: len(metered.handled) == 1, 15)
    async with _client(app) as http:
        await wait_acked(http, 1)
        resp = await http.get(
            "/actuator/prometheus",
            params={
                "includedNames": "redis_streaming_messages_acked,redis_streaming_partition_lag"
            },
        )
        names = {f.name for f in text_string_to_metric_families(resp.text)}
        assert names == {"redis_streaming_messages_acked", "redis_streaming_partition_lag"}
        om = await http.get(
            "/actuator/prometheus", headers={"Accept": "application/openmetrics-text"}
        )
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.rstrip().endswith("# EOF")


async def test_metrics_disabled_serves_no_metric_endpoints(settings: Settings) -> None:
    data = _settings(settings).model_dump()
    data["metrics"]["enabled"] = False
    application = RedisStreamingApplication(settings=Settings.model_validate(data))
    async with application.lifespan(), _client(application) as http:
        assert (await http.get("/actuator/prometheus")).status_code == 404
        assert (await http.get("/actuator/metrics")).status_code == 404
        assert (await http.get("/actuator/health")).status_code == 200


async def test_two_applications_in_one_process_keep_their_own_metrics(
    settings: Settings, rs_namespace: str
) -> None:
    metered.handled.clear()
    first = RedisStreamingApplication(
        settings=_settings(settings), listener_packages=["tests.starter.apps.metered"]
    )
    data = _settings(settings).model_dump()
    data["mq"]["namespace"] = rs_namespace + "-b"
    second = RedisStreamingApplication(settings=Settings.model_validate(data))
    async with first.lifespan(), second.lifespan():
        producer: Producer = await resolve(first.container.producer)
        await producer.send(TOPIC, {"n": 1, "mode": "ok"})
        await wait_until(lambda: len(metered.handled) == 1, 15)
        async with _client(first) as a, _client(second) as b:
            await wait_acked(a, 1)
            got_a = samples((await a.get("/actuator/prometheus")).text)
            got_b = samples((await b.get("/actuator/prometheus")).text)
    assert total(got_a, "redis_streaming_messages_acked_total") == 1
    assert total(got_b, "redis_streaming_messages_acked_total") == 0
