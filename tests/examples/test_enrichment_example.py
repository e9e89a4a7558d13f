"""examples/enrichment: two ``python -m examples.enrichment`` processes share the partitions;
every order comes out once on ``orders-enriched`` with its customer's name and tier as the
table had them (nulls for an unknown or deleted customer); a customer update is seen by the
orders sent after it; ``python -m examples.enrichment.send`` prints both; SIGTERM stops the
processes gracefully."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from typing import Any

import pytest
from examples.enrichment.job import (
    CUSTOMERS,
    JOB,
    ORDERS,
    OUTPUT,
    PARTITIONS,
    TABLE,
    Customer,
    Order,
)

from redis_streaming import MQOptions, Producer, ProducerRecord
from redis_streaming.runtime import StateReader
from tests.helpers import fast_mq, wait_until
from tests.runtime.support import read
from tests.runtime.wordcount_procs import ROOT, job_env, start, stop

pytestmark = pytest.mark.slow

ENRICHMENT = ("-m", "examples.enrichment")


def customers_and_orders(seed: int) -> tuple[list[Customer], list[Order]]:
    """Ten customers and 60 orders, a sixth of them of customers nobody knows."""
    rng = random.Random(seed)
    customers = [
        Customer(id=f"c{i}", name=f"Name {i}", tier=rng.choice(["gold", "basic"]))
        for i in range(10)
    ]
    orders = [
        Order(id=f"o{n}", customer=rng.choice([c.id for c in customers] + ["nobody"]),
              amount=rng.randint(100, 9999) / 100)
        for n in range(60)
    ]  # fmt: skip
    return customers, orders


def enriched(order: Order, customer: Customer | None) -> dict[str, Any]:
    """The reference: the order and its customer's name and tier (None when unknown)."""
    return {
        **order.model_dump(),
        "customer_name": None if customer is None else customer.name,
        "tier": None if customer is None else customer.tier,
    }


def send(env: dict[str, str], *args: str) -> Any:
    """Run ``python -m examples.enrichment.send <args>``; its printed line (JSON decoded for
    an order)."""
    done = subprocess.run(
        [sys.executable, "-m", "examples.enrichment.send", *args],
        env=env, cwd=ROOT, capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    line = done.stdout.decode().strip()
    return json.loads(line) if args[0] == "order" else line


async def test_two_processes_enrich_every_order_with_its_customer(
    rs_redis: Any, rs_server_url: str, rs_namespace: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    options: MQOptions = fast_mq(rs_namespace)
    env = job_env(rs_server_url, rs_namespace)
    await start(procs, env, ENRICHMENT)
    await start(procs, env, ENRICHMENT)

    async def both_hold_leases() -> bool:  # they share the partitions
        holders = [
            await rs_redis.get(k) async for k in rs_redis.scan_iter(match=f"{rs_namespace}:lease:*")
        ]
        return all(any(f"-{p.pid}-".encode() in (h or b"") for h in holders) for p in procs)

    await wait_until(both_hold_leases, 20, "both processes holding partitions")
    customers, orders = customers_and_orders(18)
    producer = Producer(rs_redis, options)
    await producer.send_many(CUSTOMERS, [ProducerRecord(c, key=c.id) for c in customers])
    reader = StateReader(rs_redis, options)
    table = {c.id: c.model_dump() for c in customers}

    async def table_complete() -> bool:
        return await reader.items(JOB, TABLE) == table

    await wait_until(table_complete, 20, "the customers in the job's table")
    await producer.send_many(ORDERS, [ProducerRecord(o, key=o.customer) for o in orders])

    async def all_enriched() -> bool:
        return len(await read(rs_redis, options, OUTPUT, PARTITIONS)) >= len(orders)

    await wait_until(all_enriched, 30, "every order enriched")
    by_id = {c.id: c for c in customers}
    outputs = await read(rs_redis, options, OUTPUT, PARTITIONS)
    assert sorted(outputs, key=lambda o: o[1]["id"]) == sorted(
        ((o.customer, enriched(o, by_id.get(o.customer))) for o in orders),
        key=lambda o: o[1]["id"],
    )
    assert any(value["customer_name"] is None for _, value in outputs)

    # A customer update (then a deletion) is seen by the orders sent after it.
    line = send(env, "customer", "c1", "Ada", "platinum")
    assert line == 'customer c1: {"id": "c1", "name": "Ada", "tier": "platinum"}'
    new = Customer(id="c1", name="Ada", tier="platinum")
    assert send(env, "order", "later", "c1", "12.5") == enriched(
        Order(id="later", customer="c1", amount=12.5), new
    )
    assert send(env, "customer", "c1", "--delete") == "customer c1: deleted"
    assert send(env, "order", "gone", "c1", "3")["customer_name"] is None
    assert send(env, "order", "stranger", "nobody", "1")["tier"] is None
    assert await stop(procs) == [0, 0]  # SIGTERM: a graceful stop
