"""A function that raises on a timer (downstream of a window's final result, or an
``on_timer``) fails its own work only: after ``max_attempts`` the window closes without its
result (logged) and the partition goes on, rather than running the batch again forever."""

from __future__ import annotations

from typing import Any

import pytest

from redis_streaming import Job, MQOptions, WindowResult, agg, windows
from tests.runtime.support import feed, running_job, topic, wait_idle, wait_outputs

BASE = 1_700_000_000_000


def label(r: WindowResult) -> str:
    if r.key == "bad":
        raise ValueError("cannot label the bad window")
    return f"{r.key}@{r.start - BASE}={r.value}"


@pytest.mark.cluster
async def test_a_window_whose_result_cannot_be_made_is_dropped_and_the_others_go_on(
    rs_redis: Any, rs_options: MQOptions
) -> None:
    await topic(rs_redis, rs_options, "labels", 1)
    values = [("bad", {"ts": BASE + 10}), ("good", {"ts": BASE + 20})]
    values += [("good", {"ts": BASE + 1000 * i + 5}) for i in range(1, 4)]
    await feed(rs_redis, rs_options, "events", values, partitions=1)
    job = Job("labelled", partitions=1)
    (
        job.source("events", value_type=dict, timestamp=lambda v: v["ts"])
        .window(windows.tumbling(1))
        .aggregate(agg.count())
        .final()
        .map(label)
        .to("labels")
    )
    async with running_job(job, rs_redis, rs_options) as handle:
        found = await wait_outputs(rs_redis, rs_options, "labels", 3, partitions=1)
        await wait_idle(rs_redis, rs_options, handle)
        assert [v for _, v in found] == ["good@0=1", "good@1000=1", "good@2000=1"]
        assert "cannot label the bad window" in (handle.status().stages[0].last_error or "")
