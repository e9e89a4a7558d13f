"""``join_asof`` against a brute-force reference: a table keeping the newest 2 versions per
key by event time, updates arriving out of event-time order (some at the same time as an
earlier one, replacing it), tombstones, records at the exact time of a version, before every
kept version (None even if an older version once existed) and after a deletion."""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel

from redis_streaming import Job, MQOptions
from tests.join.reference import Round, as_of, rounds
from tests.join.support import RUNTIME, by_id, create, play
from tests.runtime.support import running_job, wait_idle

VERSIONS = 2


class Customer(BaseModel):
    """The versioned table's value type (each version is rebuilt)."""

    name: str
    tier: str


def stamped(plan: list[Round]) -> list[Round]:
    """``plan`` with each record's event time in its payload (``ts``) and a meaningless entry
    time: the stream's time comes from its ``timestamp`` extractor."""
    return [
        Round(rnd.updates, [(k, {**rec, "ts": ts}, 0) for k, rec, ts in rnd.records])
        for rnd in plan
    ]


def named(order: dict[str, Any], customer: Customer | None) -> dict[str, Any]:
    assert customer is None or isinstance(customer, Customer)
    return {**order, "name": customer.name if customer is not None else None}


async def test_join_asof_sees_the_kept_version_at_the_records_event_time(
    rs_redis: Any, rs_options: MQOptions
) -> None:
    plan = rounds(18, 8, updates=8, records=10, spread=1500)
    seen = as_of(plan, VERSIONS)
    unbounded = as_of(plan, 10**9)
    exact = {r[1]["id"] for rnd in plan for r in rnd.records if r[2] in {u[2] for u in rnd.updates}}
    # The input has every case the reference distinguishes.
    assert sum(v is not None for v in seen.values()) >= 15
    assert sum(seen[i] is None and unbounded[i] is not None for i in seen) >= 3  # trimmed away
    assert sum(seen[i] is not None for i in exact) >= 5
    updates = [u for rnd in plan for u in rnd.updates]
    assert any(b[2] < a[2] for a, b in itertools.pairwise(updates))
    await create(rs_redis, rs_options, customers=2, orders=2, inner=1, left=1)
    job = Job("asof", partitions=2)
    history = job.table("customers", value_type=Customer, versions=VERSIONS)
    orders = job.source("orders", value_type=dict, timestamp=lambda o: o["ts"])
    orders.join_asof(history).to("inner")
    orders.join_asof(history, how="left", joiner=named).to("left")

    async with running_job(job, rs_redis, rs_options, RUNTIME) as handle:
        await play(rs_redis, rs_options, handle, stamped(plan), ("customers", 2), ("orders", 2))
        await wait_idle(rs_redis, rs_options, handle)

    records = {r[1]["id"]: {**r[1], "ts": r[2]} for rnd in plan for r in rnd.records}
    assert await by_id(rs_redis, rs_options, "inner", 1) == {
        i: [records[i], v] for i, v in seen.items() if v is not None
    }
    assert await by_id(rs_redis, rs_options, "left", 1) == {
        i: {**records[i], "name": v and v["name"]} for i, v in seen.items()
    }
