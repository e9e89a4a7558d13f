"""examples/wordcount: two ``python -m examples.wordcount`` processes share the partitions and
count words exactly once, whatever their case; ``python -m examples.wordcount.send`` prints the
counts; SIGTERM stops the processes gracefully. In-process, as a user would test the job with
``JobTest``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from examples.wordcount.job import (
    INPUT,
    JOB,
    OUTPUT,
    PARTITIONS,
    STORE,
    Sentence,
    WordCount,
    build_job,
)

from redis_streaming import Admin, Keys, MQOptions
from redis_streaming.runtime import StateReader
from redis_streaming.testing import JobTest
from tests.helpers import fast_mq, wait_until
from tests.runtime.wordcount_procs import (
    ROOT,
    Feed,
    exactly_once_problems,
    job_env,
    read_outputs,
    sentences,
    start,
    stop,
    true_counts,
    wait_outputs,
)

JT = Callable[..., JobTest]


@pytest.mark.slow
async def test_two_processes_count_every_word_once_and_stop_on_sigterm(
    rs_redis: Any, rs_server_url: str, rs_namespace: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    options: MQOptions = fast_mq(rs_namespace)
    keys = Keys(rs_namespace)
    env = job_env(rs_server_url, rs_namespace)
    await start(procs, env)
    await start(procs, env)

    async def both_hold_leases() -> bool:  # they share the partitions
        holders = [
            await rs_redis.get(k) async for k in rs_redis.scan_iter(match=f"{rs_namespace}:lease:*")
        ]
        return all(any(f"-{p.pid}-".encode() in (h or b"") for h in holders) for p in procs)

    await wait_until(both_hold_leases, 20, "both processes holding partitions")
    texts = sentences(300, vocabulary=20)
    truth = true_counts(texts)
    total = sum(truth.values())
    await Feed(rs_redis, options, INPUT).run(texts, batch=50)
    await wait_outputs(rs_redis, keys, OUTPUT, PARTITIONS, total, 60)

    outputs = await read_outputs(rs_redis, keys, OUTPUT, PARTITIONS)
    assert all(o == {"word": w, "count": o["count"]} for w, outs in outputs.items() for o in outs)
    counts = {w: [o["count"] for o in outs] for w, outs in outputs.items()}
    assert not exactly_once_problems(counts, truth)
    assert await StateReader(rs_redis, options).items(JOB, STORE) == truth
    send = subprocess.run(
        [sys.executable, "-m", "examples.wordcount.send", "Hello hello", "w0"],
        env=env, cwd=ROOT, capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    assert send.stdout.decode().splitlines() == ["hello: 2", f"w0: {truth['w0'] + 1}"]
    assert await stop(procs) == [0, 0]  # SIGTERM: a graceful stop


@pytest.mark.slow
async def test_topics_are_created_with_the_configured_partitions(
    rs_redis: Any, rs_server_url: str, rs_namespace: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    env = job_env(rs_server_url, rs_namespace, REDIS_STREAMING_WORDCOUNT__PARTITIONS="4")
    await start(procs, env)
    admin = Admin(rs_redis, fast_mq(rs_namespace))
    described = [await admin.describe_topic(t) for t in (INPUT, OUTPUT)]
    assert [len(d.partitions) for d in described] == [4, 4]
    assert await stop(procs) == [0]


async def test_a_user_style_test_of_the_job(rs_job_test: JT) -> None:
    async with rs_job_test(build_job()) as t:
        await t.send(INPUT, Sentence(text="Hello hello world"))
        assert await t.outputs(OUTPUT, WordCount) == [
            WordCount(word="hello", count=1), WordCount(word="hello", count=2),
            WordCount(word="world", count=1),
        ]  # fmt: skip
        assert await t.state_items(STORE) == {"hello": 2, "world": 1}
