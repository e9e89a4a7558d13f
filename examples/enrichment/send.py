"""``python -m examples.enrichment.send``: send a customer or an order and print what the job
made of it.

- ``send customer c1 Ada gold`` sets customer ``c1`` (``--delete``: deletes it) and prints it
  once the job's table holds it, so orders sent afterwards see it;
- ``send order o1 c1 12.5`` sends an order of customer ``c1`` and prints the enriched order
  once the job has written it to ``orders-enriched``.
Waits at most ``--wait-s`` seconds (exit code 1 when it gave up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from examples.enrichment.job import CUSTOMERS, JOB, ORDERS, OUTPUT, TABLE, Customer, Order
from examples.enrichment.settings import connect, mq_options, read_settings
from redis_streaming import Admin, Keys, MQOptions, Producer
from redis_streaming.mq.producer import partition_for_key
from redis_streaming.runtime import StateReader

POLL_S = 0.05


async def send_customer(redis: Any, options: MQOptions, args: argparse.Namespace) -> str | None:
    """Send the customer (or its tombstone); its line once the table holds it."""
    customer = None if args.delete else Customer(id=args.id, name=args.name, tier=args.tier)
    await Producer(redis, options).send(CUSTOMERS, customer, key=args.id)
    wanted = None if customer is None else customer.model_dump()
    reader = StateReader(redis, options)

    async def done() -> bool:
        return (await reader.items(JOB, TABLE)).get(args.id) == wanted

    if not await until(done, args.wait_s):
        return None
    return f"customer {args.id}: " + ("deleted" if wanted is None else json.dumps(wanted))


async def send_order(redis: Any, options: MQOptions, args: argparse.Namespace) -> str | None:
    """Send the order; the enriched order (a JSON line) once the job has written it."""
    order = Order(id=args.id, customer=args.customer, amount=args.amount)
    partitions = len((await Admin(redis, options).describe_topic(OUTPUT)).partitions)
    stream = Keys(options.namespace).stream(OUTPUT, partition_for_key(order.customer, partitions))
    last = await redis.xrevrange(stream, count=1)
    after = "(" + last[0][0].decode() if last else "-"
    await Producer(redis, options).send(ORDERS, order, key=order.customer)
    found: list[Any] = []

    async def done() -> bool:
        for _, fields in await redis.xrange(stream, after, "+"):
            value = json.loads(fields[b"payload"])
            if value["id"] == order.id:
                found.append(value)
                return True
        return False

    return json.dumps(found[0]) if await until(done, args.wait_s) else None


async def until(condition: Any, wait_s: float) -> bool:
    """Poll ``condition`` until it is true (True) or ``wait_s`` passed (False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while not await condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True


async def main_async(args: argparse.Namespace) -> str | None:
    settings = read_settings()
    if not settings.redis.url:
        sys.exit("set REDIS_STREAMING_REDIS__URL to the URL the job printed")
    redis = await connect(settings, settings.redis.url)
    try:
        line: str | None = await args.send(redis, mq_options(settings), args)
        return line
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.enrichment.send")
    parser.add_argument("--wait-s", type=float, default=10.0, help="how long to wait (10 s)")
    kinds = parser.add_subparsers(required=True)
    customer = kinds.add_parser("customer", help="set (or --delete) a customer")
    customer.add_argument("id")
    customer.add_argument("name", nargs="?", default="")
    customer.add_argument("tier", nargs="?", default="")
    customer.add_argument("--delete", action="store_true", help="delete the customer")
    customer.set_defaults(send=send_customer)
    order = kinds.add_parser("order", help="send an order")
    order.add_argument("id")
    order.add_argument("customer")
    order.add_argument("amount", type=float)
    order.set_defaults(send=send_order)
    args = parser.parse_args()
    if args.send is send_customer and not args.delete and not (args.name and args.tier):
        parser.error("customer: give a name and a tier, or --delete")
    line = asyncio.run(main_async(args))
    if line is None:
        sys.exit(f"the job did not take it within {args.wait_s} s")
    print(line)


if __name__ == "__main__":
    main()
