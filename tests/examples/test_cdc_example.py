"""examples/cdc: changes of table ``accounts`` reach the hash ``accounts:balance``."""

from __future__ import annotations

from typing import Any

import psycopg
from examples.cdc.pipeline import BALANCES, create_table, running

from tests.helpers import fast_mq, wait_until


async def test_the_balance_hash_follows_the_accounts_table(
    rs_redis: Any, rs_namespace: str, rs_pg_database: str
) -> None:
    create_table(rs_pg_database)
    with psycopg.connect(rs_pg_database, autocommit=True) as db:
        db.execute("INSERT INTO accounts VALUES (1, 'ann', 100), (2, 'bob', 50)")
        async with running(rs_redis, fast_mq(rs_namespace), rs_pg_database):
            await wait_until(lambda: rs_redis.hgetall(BALANCES), 20, "the snapshot in the hash")
            db.execute("INSERT INTO accounts VALUES (3, 'cy', 7)")
            with db.transaction():
                db.execute("UPDATE accounts SET balance = balance - 30 WHERE id = 1")
                db.execute("UPDATE accounts SET balance = balance + 30 WHERE id = 2")
            db.execute("DELETE FROM accounts WHERE id = 3")
            db.execute("UPDATE accounts SET balance = 1.25 WHERE id = 2")
            want = {b"1": b"70", b"2": b"1.25"}

            async def in_step() -> bool:
                return await rs_redis.hgetall(BALANCES) == want

            await wait_until(in_step, 20, f"hash == {want}")
