"""What the Postgres sink's tests share: SQL on the test's database, and batches built by hand
(entry ids chosen so that comparing them as text and as numbers disagree: "5-9" < "5-10")."""

from __future__ import annotations

from typing import Any

import psycopg

from redis_streaming import SinkBatch, SinkRecord

APPEND_DDL = "CREATE TABLE events (seq bigserial, record_id text NOT NULL, n integer)"
UPSERT_DDL = "CREATE TABLE counts (key text PRIMARY KEY, value jsonb)"


async def sql(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run ``query`` (autocommit) on the database at ``url``; its rows (none for a command)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []


def event_row(rec: SinkRecord) -> dict[str, Any]:
    """An append-only row: the input entry's id, the value."""
    return {"record_id": rec.entry_id, "n": rec.value}


def batch(ids: range, ms: int = 5, partition: int = 0) -> SinkBatch:
    """A batch of task ``j``/``in``/``partition``: a record of value ``seq`` for entry
    ``<ms>-<seq>`` for each ``seq`` of ``ids``, the batch's last id that of the last one."""
    records = [SinkRecord(f"k{seq % 3}", seq, 0, f"{ms}-{seq}") for seq in ids]
    return SinkBatch("j", "s0", "in", partition, records, f"{ms}-{ids[-1]}")


async def offsets(url: str) -> list[tuple[Any, ...]]:
    """The rows of ``rs_sink_offsets``, ordered."""
    return await sql(url, "SELECT sink, job, topic, partition, last_id FROM rs_sink_offsets "
                          "ORDER BY sink, job, topic, partition")  # fmt: skip


async def appended(url: str) -> list[int]:
    """The ``n`` of every row of ``events``, in insertion order."""
    return [row[0] for row in await sql(url, "SELECT n FROM events ORDER BY seq")]
