"""Stream-table joins against a brute-force reference: seeded rounds of table updates (with
tombstones) and stream records, each round's records sent once the table has committed its
updates, so each record must see exactly the table as of its round. Inner and left joins, the
default joiner and custom (sync and async) ones, a pydantic ``value_type`` rebuilt on lookup,
batches of 4 cutting through every round."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from redis_streaming import Job, MQOptions
from tests.join.reference import latest, rounds
from tests.join.support import RUNTIME, by_id, create, play
from tests.runtime.support import running_job, wait_idle


class Customer(BaseModel):
    """The table's value type."""

    name: str
    tier: str


def enrich(order: dict[str, Any], customer: Customer | None) -> dict[str, Any]:
    """A custom joiner; ``kind`` shows what the lookup gave (a rebuilt model, or None)."""
    return {
        **order,
        "customer_name": customer.name if customer is not None else None,
        "tier": customer.tier if customer is not None else None,
        "kind": type(customer).__name__,
    }


async def tier_of(order: dict[str, Any], customer: Customer | None) -> dict[str, Any]:
    """An async joiner."""
    assert customer is not None, "an inner join never calls the joiner with a miss"
    return {"id": order["id"], "customer": order["customer"], "tier": customer.tier}


@pytest.mark.cluster
async def test_joins_see_the_tables_value_as_of_their_round(
    rs_redis: Any, rs_options: MQOptions
) -> None:
    plan = rounds(18, 8, updates=6, records=8)
    seen = latest(plan)
    assert sum(v is None for v in seen.values()) >= 10  # misses: unknown and deleted keys
    assert sum(v is not None for v in seen.values()) >= 20
    await create(rs_redis, rs_options, customers=3, orders=3, inner=2, left=2, tiers=2)
    job = Job("joins", partitions=3)
    customers = job.table("customers", value_type=Customer)
    orders = job.source("orders", value_type=dict)
    orders.join_table(customers).to("inner")
    orders.join_table(customers, how="left", joiner=enrich).to("left")
    orders.join_table(customers, how="inner", joiner=tier_of).to("tiers")

    async with running_job(job, rs_redis, rs_options, RUNTIME) as handle:
        await play(rs_redis, rs_options, handle, plan, ("customers", 3), ("orders", 3))
        await wait_idle(rs_redis, rs_options, handle)

    records = {r[1]["id"]: r[1] for rnd in plan for r in rnd.records}
    hits = {i: v for i, v in seen.items() if v is not None}
    assert await by_id(rs_redis, rs_options, "inner", 2) == {
        i: [records[i], v] for i, v in hits.items()
    }
    assert await by_id(rs_redis, rs_options, "left", 2) == {
        i: {
            **records[i],
            "customer_name": v and v["name"],
            "tier": v and v["tier"],
            "kind": "NoneType" if v is None else "Customer",
        }
        for i, v in seen.items()
    }
    assert await by_id(rs_redis, rs_options, "tiers", 2) == {
        i: {"id": i, "customer": records[i]["customer"], "tier": v["tier"]} for i, v in hits.items()
    }
