"""Records emitted by timers join too: a window's final result, closed by another key's
record, and what a ``process`` wall-clock timer emits in an idle tick see the table's value
for their own key (the keys of fired timers are looked up as the batch's records' are)."""

from __future__ import annotations

import time
from typing import Any

from redis_streaming import Job, MQOptions, ProcessContext, agg, windows
from tests.join.support import RUNTIME, append, create, wait_committed
from tests.runtime.support import running_job, wait_outputs


async def test_a_windows_final_result_joins_the_table(rs_redis: Any, rs_options: MQOptions) -> None:
    await create(rs_redis, rs_options, customers=1, clicks=1, out=1)
    job = Job("window-join", partitions=1)
    customers = job.table("customers")
    (
        job.source("clicks", value_type=dict)
        .window(windows.tumbling(1))
        .aggregate(agg.count())
        .final()
        .map(lambda r: {"customer": r.key, "clicks": r.value})
        .join_table(customers, how="left")
        .to("out")
    )
    async with running_job(job, rs_redis, rs_options, RUNTIME) as handle:
        await append(rs_redis, rs_options, "customers", 1, [("a", {"name": "A"}, 1)])
        await wait_committed(handle, "customers", 1)
        await append(rs_redis, rs_options, "clicks", 1, [("a", {}, 1000), ("a", {}, 1500)])
        await wait_committed(handle, "clicks", 2)
        # b's record closes a's window: the result of key a comes out of a batch of b alone.
        await append(rs_redis, rs_options, "clicks", 1, [("b", {}, 5000)])
        found = await wait_outputs(rs_redis, rs_options, "out", 1, partitions=1)
    assert found == [("a", [{"customer": "a", "clicks": 2}, {"name": "A"}])]


def remind(ctx: ProcessContext, value: Any) -> None:
    ctx.timers.at_wall_time(int(time.time() * 1000) + 200)


def reminded(ctx: ProcessContext, timer: Any) -> None:
    ctx.emit({"customer": ctx.key, "reminder": True})


async def test_what_a_wall_timer_emits_in_an_idle_tick_joins_the_table(
    rs_redis: Any, rs_options: MQOptions
) -> None:
    await create(rs_redis, rs_options, customers=1, orders=1, out=1)
    job = Job("timer-join", partitions=1)
    customers = job.table("customers")
    (
        job.source("orders", value_type=dict)
        .process(remind, on_timer=reminded)
        .join_table(customers, how="left")
        .to("out")
    )
    async with running_job(job, rs_redis, rs_options, RUNTIME) as handle:
        await append(rs_redis, rs_options, "customers", 1, [("a", {"name": "A"}, 1)])
        await wait_committed(handle, "customers", 1)
        await append(rs_redis, rs_options, "orders", 1, [("a", {}, 1)])
        found = await wait_outputs(rs_redis, rs_options, "out", 1, partitions=1)
    assert found == [("a", [{"customer": "a", "reminder": True}, {"name": "A"}])]
