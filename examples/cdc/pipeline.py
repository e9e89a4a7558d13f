"""The CDC example: table ``accounts`` of a Postgres database captured into topic
``pg.public.accounts``, and a Redis hash ``accounts:balance`` (id -> balance) kept in step.

Three parts, one process (or several: the CDC runner is a leased singleton, the job and the
listener share partitions):

- a :class:`~redis_streaming.source.SourceRunner` with a
  :class:`~redis_streaming.cdc.PostgresCdcSource`: the snapshot, then every insert, update and
  delete of ``accounts``, exactly once into ``pg.public.accounts``, keyed by ``id``;
- the job ``accounts-balance``: each change becomes ``{"id", "balance"}`` (``balance`` None
  for a delete) in ``accounts-balance`` (same key, so per account order is kept);
- a listener applying those to the hash (HSET / HDEL): idempotent, so its at-least-once
  delivery converges on the table's state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from redis_streaming import Consumer, Job, Message, MQOptions
from redis_streaming.cdc import PostgresCdcSource
from redis_streaming.source import SourceRunner

__all__ = ["BALANCES", "CHANGES", "JOB", "UPDATES", "balance_update", "create_table", "running"]

CHANGES = "pg.public.accounts"
UPDATES = "accounts-balance"
BALANCES = "accounts:balance"  # the hash: account id -> balance
JOB = "accounts-balance"


def create_table(url: str) -> None:
    """Create ``accounts (id int primary key, owner text, balance numeric)`` if missing."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS accounts "
            "(id int PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL)"
        )


def balance_update(change: dict[str, Any]) -> dict[str, Any]:
    """``{"id", "balance"}`` of a change; ``balance`` None when the row is gone."""
    row = change["after"] or change["before"] or {}
    balance = None if change["op"] in ("delete", "truncate") else row.get("balance")
    return {"id": (change["key"] or {}).get("id"), "balance": balance, "op": change["op"]}


def build_job(partitions: int = 4) -> Job:
    """The job ``accounts-balance``: changes in, balance updates out, keyed by account id."""
    job = Job(JOB, partitions=partitions)
    job.source(CHANGES, value_type=dict).map(balance_update).to(UPDATES)
    return job


def applier(redis: Any) -> Any:
    """The listener: HSET the balance, or HDEL the account (a truncate clears the hash)."""

    async def apply(message: Message) -> None:
        update = message.payload
        if update["op"] == "truncate":
            await redis.delete(BALANCES)
        elif update["balance"] is None:
            await redis.hdel(BALANCES, str(update["id"]))
        else:
            await redis.hset(BALANCES, str(update["id"]), update["balance"])

    return apply


@asynccontextmanager
async def running(redis: Any, options: MQOptions, database_url: str) -> AsyncIterator[None]:
    """Run the CDC runner, the job and the listener until the block ends."""
    source = PostgresCdcSource(
        database_url, slot="accounts_cdc", publication="accounts_cdc", tables=["public.accounts"]
    )
    runner = SourceRunner(redis, options, source, None, "accounts-cdc")
    consumer = Consumer(redis, options)
    consumer.subscribe(UPDATES, applier(redis), group="accounts-balance-hash")
    runner.start()
    handle = await build_job().run(redis, options)
    await consumer.start()
    try:
        yield
    finally:
        await consumer.stop()
        await handle.stop()
        await runner.stop()
