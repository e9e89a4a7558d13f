"""CDC killed -9 three times during 20,000 changes: every change in the topic exactly once, in
commit order per key."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.cdc.helpers import by_key, changes, count
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
KEYS, CHANGES, PER_TX = 200, 20_000, 10


def start(procs: list[subprocess.Popen[bytes]], *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.cdc.cdc_process", *args], cwd=ROOT, stdout=subprocess.DEVNULL
    )
    procs.append(proc)
    return proc


def write_changes(url: str, rounds: int, seed: int) -> None:
    """``rounds`` transactions of PER_TX increments of random keys (v counts a key's changes)."""
    rng = random.Random(seed)
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(rounds):
            with conn.transaction():
                for _ in range(PER_TX):
                    conn.execute("UPDATE t SET v = v + 1 WHERE id = %s", [rng.randrange(KEYS)])


@pytest.mark.slow
async def test_cdc_killed_three_times_loses_and_repeats_no_change(
    rs_redis: Any,
    rs_url: str,
    rs_namespace: str,
    rs_pg_database: str,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    with psycopg.connect(rs_pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)")
        conn.execute("INSERT INTO t SELECT g, 0 FROM generate_series(0, %s) g", [KEYS - 1])
    args = (rs_pg_database, rs_url, rs_namespace)
    proc = start(procs, *args)
    topic, total = "pg.public.t", KEYS + CHANGES
    await wait_until(lambda: count(rs_redis, rs_namespace, topic, 4), 30, "the snapshot")
    rounds = CHANGES // PER_TX
    for quarter in range(4):
        await asyncio.to_thread(write_changes, rs_pg_database, rounds // 4, quarter)
        if quarter < 3:
            proc.kill()  # SIGKILL: no lease release, no close
            proc.wait()
            proc = start(procs, *args)

    async def done() -> bool:
        return await count(rs_redis, rs_namespace, topic, 4) >= total

    await wait_until(done, 45, f"{total} entries")
    messages = await changes(rs_redis, rs_namespace, topic, 4)
    assert len(messages) == total
    keyed = by_key(messages)
    with psycopg.connect(rs_pg_database) as conn:
        final = dict(conn.execute("SELECT id, v FROM t").fetchall())
    for key, ms in keyed.items():
        # v counts the key's changes: each one exactly once, in commit order
        assert [m["after"]["v"] for m in ms] == list(range(final[int(key)] + 1)), key
        lsns = [m["position"] for m in ms]
        assert lsns == sorted(set(lsns)), key
