"""Where a join looks a key up: a global table joins a stream of any partition count; a
co-partitioned one refuses, at ``run()`` and before processing anything, a stream whose
partition count differs, and works once the stream is keyed into the job's partitions."""

from __future__ import annotations

from typing import Any

import pytest

from redis_streaming import InvalidArgument, Job, MQOptions
from redis_streaming.runtime import StateReader
from tests.join.reference import latest, rounds
from tests.join.support import RUNTIME, append, by_id, create, play, wait_committed
from tests.runtime.support import read, running_job, wait_idle


@pytest.mark.cluster
async def test_a_global_table_joins_a_stream_of_another_partition_count(
    rs_redis: Any, rs_options: MQOptions
) -> None:
    plan = rounds(7, 5, updates=6, records=8)
    seen = latest(plan)
    await create(rs_redis, rs_options, customers=4, orders=3, out=1)
    job = Job("global", partitions=2)
    customers = job.table("customers", global_=True)
    job.source("orders").join_table(customers, how="left").to("out")

    async with running_job(job, rs_redis, rs_options, RUNTIME) as handle:
        await play(rs_redis, rs_options, handle, plan, ("customers", 4), ("orders", 3))
        await wait_idle(rs_redis, rs_options, handle)

    records = {r[1]["id"]: r[1] for rnd in plan for r in rnd.records}
    assert await by_id(rs_redis, rs_options, "out", 1) == {
        i: [records[i], v] for i, v in seen.items()
    }


async def test_a_co_partitioned_join_of_other_partition_counts_fails_at_run(
    rs_redis: Any, rs_options: MQOptions
) -> None:
    await create(rs_redis, rs_options, customers=4, orders=3, out=1)
    order = {"id": 0, "customer": "c1", "amount": 5}
    await append(rs_redis, rs_options, "customers", 4, [("c1", {"name": "one"}, 1)])
    job = Job("copart", partitions=4)
    customers = job.table("customers")
    job.source("orders").join_table(customers).to("out")

    try:
        handle = await job.run(rs_redis, rs_options, runtime=RUNTIME)
    except InvalidArgument as exc:
        message = str(exc)
    else:
        await handle.stop()
        pytest.fail("run() accepted a co-partitioned join of 3 and 4 partitions")
    for part in ("'orders' (3 partitions)", "'customers' (4 partitions)", "global_=True"):
        assert part in message
    assert await StateReader(rs_redis, rs_options).items("copart", "table-customers") == {}
    assert await read(rs_redis, rs_options, "out", 1) == []

    # The fix the message names: key the stream into the job's (the table's) partitions.
    fixed = Job("copart", partitions=4)
    customers = fixed.table("customers")
    fixed.source("orders").key_by(lambda o: o["customer"]).join_table(customers).to("out")
    async with running_job(fixed, rs_redis, rs_options, RUNTIME) as handle:
        await wait_committed(handle, "customers", 1)
        await append(rs_redis, rs_options, "orders", 3, [("c1", order, 2)])
        await wait_idle(rs_redis, rs_options, handle)
    assert await read(rs_redis, rs_options, "out", 1) == [("c1", [order, {"name": "one"}])]
