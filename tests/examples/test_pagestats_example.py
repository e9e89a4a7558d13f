"""examples/pagestats: two ``python -m examples.pagestats`` processes share the partitions and
emit one result per page and second of event time, equal to a brute-force computation (views
and distinct users exact, p95 exact nearest-rank below 200 clicks, else within the KLL rank
error); windows close by ``idle_timeout`` when no more clicks come; clicks for a window that
has closed go to ``clicks-late``; ``python -m examples.pagestats.send`` prints the results;
SIGTERM stops the processes gracefully. In-process, as a user would test the job with
``JobTest`` (the same result in every one of 20 runs)."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from examples.pagestats.job import (
    IDLE_TIMEOUT_S,
    INPUT,
    JOB,
    LATE,
    OUTPUT,
    PARTITIONS,
    Click,
    PageStats,
    build_job,
)
from examples.pagestats.send import clicks

from redis_streaming import Admin, Keys, Producer, ProducerRecord
from redis_streaming.testing import JobTest
from tests.helpers import fast_mq, wait_until
from tests.runtime.window_ref import nearest_rank, problems, read_topic, windows_of
from tests.runtime.wordcount_procs import ROOT, job_env, start, stop

JT = Callable[..., JobTest]

PAGESTATS = ("-m", "examples.pagestats")
BASE = 1_700_000_000_000  # event time of the first click: a window start (epoch ms)


def _clicks() -> list[Click]:
    """300 clicks on 6 pages over 3 s of event time, and 500 more on ``/hot`` in its second
    window (past the sketch's exact size: p95 within the rank error)."""
    rng = random.Random(5)
    hot = [
        Click(page="/hot", user=f"h{rng.randrange(400)}", ms=rng.uniform(1, 500),
              ts=BASE + 1000 + rng.randrange(1000))
        for _ in range(500)
    ]  # fmt: skip
    return clicks(300, pages=6, users=25, start_ms=BASE, seconds=3) + hot


async def _send(redis: Any, rs_namespace: str, sent: list[Click]) -> None:
    """Send ``sent`` keyed by user: a page's clicks come from every input partition, and the
    job's ``key_by`` brings them together (interleaved on its internal topic)."""
    producer = Producer(redis, fast_mq(rs_namespace))
    await producer.send_many(INPUT, [ProducerRecord(c, key=c.user) for c in sent])


@pytest.mark.slow
@pytest.mark.cluster
async def test_two_processes_emit_every_window_once_late_clicks_apart_and_stop_on_sigterm(
    rs_redis: Any, rs_url: str, rs_namespace: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    keys = Keys(rs_namespace)
    env = job_env(rs_url, rs_namespace)
    await start(procs, env, PAGESTATS)
    await start(procs, env, PAGESTATS)

    async def both_hold_leases() -> bool:  # they share the partitions
        holders = [
            await rs_redis.get(keys.lease(topic, p, group))
            for topic, group in ((INPUT, f"{JOB}.s0"), (f"{JOB}.s1.repartition", f"{JOB}.s1"))
            for p in range(PARTITIONS)
        ]
        return all(any(f"-{p.pid}-".encode() in (h or b"") for h in holders) for p in procs)

    await wait_until(both_hold_leases, 20, "both processes holding partitions")
    sent = _clicks()
    random.Random(6).shuffle(sent)  # out of event-time order: all within the grace period
    # No click is late whatever the order they arrive in: every event time is below BASE +
    # 3000, and a window [s, s + 1000) with s >= BASE closes at a watermark of s + 3000.
    assert max(c.ts for c in sent) < BASE + 3000
    await _send(rs_redis, rs_namespace, sent)
    truth = windows_of(sent)

    async def results() -> list[Any]:
        return await read_topic(rs_redis, keys, OUTPUT, PARTITIONS)

    async def all_out() -> bool:
        return len(await results()) >= len(truth)

    # No click has an event time past the last windows' end + grace: only the idle timeout
    # (the watermark moving on with the wall clock) closes them.
    await wait_until(all_out, 60, f"{len(truth)} windows on {OUTPUT}")
    assert not problems(await results(), sent), "\n".join(problems(await results(), sent))
    assert await read_topic(rs_redis, keys, LATE, PARTITIONS) == []

    # Clicks for windows that have closed: to clicks-late, keyed by page, and no result moves.
    late = [
        Click(page=p, user="late", ms=1.0, ts=BASE + 500 * i)
        for i, p in enumerate(["/", "/hot", "/docs"])
    ]
    await _send(rs_redis, rs_namespace, late)

    async def late_out() -> bool:
        return len(await read_topic(rs_redis, keys, LATE, PARTITIONS)) >= len(late)

    await wait_until(late_out, 30, "the late clicks on clicks-late")
    got_late = await read_topic(rs_redis, keys, LATE, PARTITIONS)
    expected_late = [(c.page, c.model_dump()) for c in late]
    assert sorted(got_late, key=str) == sorted(expected_late, key=str)
    assert not problems(await results(), sent)  # nothing more on page-stats

    # The send helper: paced clicks an hour of event time later, results printed per window.
    start_ms = BASE + 3_600_000
    args = ["--clicks", "60", "--pages", "2", "--seconds", "1.5", "--start-ms", str(start_ms)]
    helper = subprocess.run(
        [sys.executable, "-m", "examples.pagestats.send", *args, "--wait-s", "30"],
        env=env, cwd=ROOT, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    more = clicks(60, pages=2, users=30, start_ms=start_ms, seconds=1.5)
    by_start = sorted(windows_of(more).items(), key=lambda item: (item[0][1], item[0][0]))
    assert helper.stdout.decode().splitlines() == [
        f"{page} {start} views={len(g)} users={len({c.user for c in g})} "
        f"p95_ms={nearest_rank([c.ms for c in g], 0.95)}"
        for (page, start), g in by_start
    ]
    assert not problems(await results(), sent + more)
    assert await stop(procs) == [0, 0]  # SIGTERM: a graceful stop


@pytest.mark.slow
async def test_topics_are_created_with_the_configured_partitions(
    rs_redis: Any, rs_server_url: str, rs_namespace: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    env = job_env(rs_server_url, rs_namespace, REDIS_STREAMING_PAGESTATS__PARTITIONS="2")
    await start(procs, env, PAGESTATS)
    admin = Admin(rs_redis, fast_mq(rs_namespace))
    described = [await admin.describe_topic(t) for t in (INPUT, OUTPUT, LATE)]
    assert [len(d.partitions) for d in described] == [2, 2, 2]
    assert await stop(procs) == [0]


@pytest.mark.parametrize("run", range(20))
async def test_a_user_style_test_of_the_job(rs_job_test: JT, run: int) -> None:
    async with rs_job_test(build_job()) as t:
        for i, (page, user) in enumerate([("/", "ann"), ("/", "bob"), ("/", "ann"), ("/a", "bob")]):
            await t.send(INPUT, Click(page=page, user=user, ms=100 * i, ts=400 * i))  # ts: ms
        await t.advance(wall=IDLE_TIMEOUT_S)  # quiet: the watermark moves on, windows close
        assert await t.outputs(OUTPUT, PageStats) == [
            PageStats(page="/", window_start=0, window_end=1000, views=3, users=2, p95_ms=200),
            PageStats(page="/a", window_start=1000, window_end=2000, views=1, users=1, p95_ms=300),
        ]


async def test_a_click_for_a_closed_window_goes_to_clicks_late(rs_job_test: JT) -> None:
    async with rs_job_test(build_job()) as t:
        await t.send(INPUT, Click(page="/", user="ann", ms=1, ts=5000))
        await t.send(INPUT, Click(page="/", user="bob", ms=1, ts=0))  # [0, 1000) has closed
        assert await t.outputs(LATE, Click, keys=True) == [
            ("/", Click(page="/", user="bob", ms=1, ts=0))
        ]
        assert await t.outputs(OUTPUT) == []  # [5000, 6000) is open
