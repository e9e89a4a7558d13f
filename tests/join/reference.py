"""Seeded rounds of table updates and stream records, and brute-force references for what a
join sees: the table's latest value per key, or its value as of an event time out of the
newest ``versions`` versions per key (a dict of versions, trimmed by dropping the oldest)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

T0 = 1_700_000_000_000
Entry = tuple[str, Any, int]  # (key, payload, event time ms); payload None is a tombstone

CUSTOMERS = [f"c{i}" for i in range(8)]
UNKNOWN = ["x1", "x2"]  # keys the table never holds


@dataclass
class Round:
    """Table updates, then the stream records sent once the table has committed them."""

    updates: list[Entry] = field(default_factory=list)
    records: list[Entry] = field(default_factory=list)


def rounds(seed: int, count: int, *, updates: int, records: int, spread: int = 0) -> list[Round]:
    """``count`` rounds. Updates set a customer (``{"name", "tier"}``) or delete it (a quarter
    are tombstones); records (``{"id", "customer", "amount"}``) name a customer or an unknown
    key. Event times grow by about 100 ms per entry, each moved back by up to ``spread``. A
    tenth of the updates repeat the previous update's key and time; a fifth of the records take
    the key and time of one of the round's updates."""
    rng = random.Random(seed)
    out: list[Round] = []
    t, n = T0, 0
    for r in range(count):
        rnd = Round()
        for i in range(updates):
            t += rng.randint(1, 200)
            key, ts = rng.choice(CUSTOMERS), t - rng.randint(0, spread)
            if rnd.updates and rng.random() < 0.1:  # the same key and time again: replaces
                key, _, ts = rnd.updates[-1]
            tier = rng.choice(["gold", "basic"])
            value = None if rng.random() < 0.25 else {"name": f"{key}-{r}.{i}", "tier": tier}
            rnd.updates.append((key, value, ts))
        for _ in range(records):
            t += rng.randint(1, 200)
            key, ts = rng.choice(CUSTOMERS + UNKNOWN), t - rng.randint(0, spread)
            if rng.random() < 0.2:  # exactly at an update's time
                key, _, ts = rng.choice(rnd.updates)
            rnd.records.append((key, {"id": n, "customer": key, "amount": rng.randint(1, 99)}, ts))
            n += 1
        out.append(rnd)
    return out


def latest(plan: list[Round]) -> dict[int, Any]:
    """The table value (None: absent) each record's join sees, by record id."""
    table: dict[str, Any] = {}
    seen: dict[int, Any] = {}
    for rnd in plan:
        for key, value, _ in rnd.updates:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        for key, record, _ in rnd.records:
            seen[record["id"]] = table.get(key)
    return seen


def as_of(plan: list[Round], versions: int) -> dict[int, Any]:
    """The value (None: absent, deleted or older than every kept version) as of each record's
    event time, by record id; a later update at the same time replaces the earlier one."""
    history: dict[str, dict[int, Any]] = {}
    seen: dict[int, Any] = {}
    for rnd in plan:
        for key, value, ts in rnd.updates:
            kept = history.setdefault(key, {})
            kept[ts] = value
            while len(kept) > versions:
                del kept[min(kept)]
        for key, record, ts in rnd.records:
            kept = history.get(key, {})
            before = [v for v in kept if v <= ts]
            seen[record["id"]] = kept[max(before)] if before else None
    return seen
