"""A ``@job`` application under ``redis-streaming run``, stopped by SIGTERM while its job is busy
and started again: every word's count is applied exactly once (its outputs are 1..n in order,
its state is the truth) and ``/actuator/jobs/wordcount`` agrees with Redis afterwards."""

from __future__ import annotations

import asyncio
import collections
import random
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from redis_streaming import MQOptions, Producer, ProducerRecord, StateReader
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.wire.codec import decode_payload, parse_fields
from redis_streaming.testing import free_port
from tests.helpers import fast_env, wait_until
from tests.starter.support import app_env, start_app, stop_app, wait_ready

ROOT = Path(__file__).resolve().parents[2]
WORDS = [f"w{i}" for i in range(10)]
SENT = 3000


def _env(url: str, namespace: str, port: int) -> dict[str, str]:
    return {
        **app_env(url, namespace, port, ACTUATOR__EXPOSE="health,jobs"),
        **fast_env(),
        "REDIS_STREAMING_MQ__DEFAULT_PARTITIONS": "4",
        "REDIS_STREAMING_RUNTIME__BATCH_SIZE": "50",
        "JOBS_APP_SLOW_MS": "2",
    }


async def _outputs(redis: Any, options: MQOptions) -> dict[str, list[int]]:
    keys = Keys(options.namespace)
    found: dict[str, list[int]] = collections.defaultdict(list)
    for p in range(4):
        for _, fields in await redis.xrange(keys.stream("counted", p)):
            parsed = parse_fields(fields)
            word, n = decode_payload(parsed.raw, parsed.content_type).split("=")
            found[word].append(int(n))
    return found


async def test_sigterm_mid_job_neither_loses_nor_doubles_a_batch(
    rs_server_url: str, rs_namespace: str
) -> None:
    port = free_port()
    env = _env(rs_server_url, rs_namespace, port)
    options = MQOptions(namespace=rs_namespace)
    base = f"http://127.0.0.1:{port}/actuator"
    redis = aioredis.from_url(rs_server_url)
    rng = random.Random(7)
    truth: collections.Counter[str] = collections.Counter()
    proc = start_app("tests.starter.apps.jobs_main:app", env, cwd=ROOT)
    try:
        await asyncio.to_thread(wait_ready, f"{base}/health", proc)
        producer = Producer(redis, options)
        words = [rng.choice(WORDS) for _ in range(SENT)]
        truth.update(words)
        first, rest = words[: SENT // 2], words[SENT // 2 :]
        await producer.send_many("words", [ProducerRecord(w, key=w) for w in first])
        async with httpx.AsyncClient() as http:

            async def busy() -> bool:  # the job has started on the backlog, not finished it
                detail = (await http.get(f"{base}/jobs/wordcount")).json()
                stages = detail.get("stageDetails") or [{"recordsIn": 0, "lag": 0}]
                return stages[0]["recordsIn"] > 0 and sum(s["lag"] for s in stages) > 0

            await wait_until(busy, what="the job busy with its backlog")
        assert stop_app(proc) == b""  # SIGTERM
        assert proc.returncode == 0
        keys = Keys(options.namespace)  # stopped gracefully: every partition's lease released
        leases = [
            keys.lease(topic, p, group)
            for topic, group in (
                ("words", "wordcount.s0"),
                ("wordcount.s1.repartition", "wordcount.s1"),
            )
            for p in range(4)
        ]
        assert await redis.exists(*leases) == 0
        assert sum(len(v) for v in (await _outputs(redis, options)).values()) < SENT // 2
        await producer.send_many("words", [ProducerRecord(w, key=w) for w in rest])
        proc = start_app("tests.starter.apps.jobs_main:app", env, cwd=ROOT)
        await asyncio.to_thread(wait_ready, f"{base}/health", proc)

        async def counted() -> bool:
            outputs = await _outputs(redis, options)
            return sum(len(v) for v in outputs.values()) >= SENT

        await wait_until(counted, timeout_s=60, what=f"{SENT} outputs")
        outputs = await _outputs(redis, options)
        for word, n in truth.items():
            assert outputs[word] == list(range(1, n + 1)), word
        state = await StateReader(redis, options).items("wordcount", "counts")
        assert state == dict(truth)
        async with httpx.AsyncClient() as http:
            detail = (await http.get(f"{base}/jobs/wordcount")).json()
        assert detail["state"] == "running"
        [store] = detail["stageDetails"][1]["stores"]
        assert store["keys"] == len(truth)
        assert all(s["lag"] == 0 for s in detail["stageDetails"])
    finally:
        stop_app(proc)
        await redis.aclose()
