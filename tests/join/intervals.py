"""Seeded two-sided input for interval joins and a brute-force reference of what a join of
it emits: every pair of records with the same key and ``left.ts - before <= right.ts <= left.ts
+ after``, and the records that found no pair, per ``how``."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from tests.join.reference import T0, Entry

Output = tuple[str | None, Any, int]  # (key, joined value, event time ms) of an output entry


def sides(
    seed: int, *, keys: int, per_side: int, span_ms: int, step_ms: int
) -> tuple[list[Entry], list[Entry]]:
    """Left and right records (``{"id", "side", "ts"}``), ``per_side`` each, over ``keys`` keys,
    at times ``T0 + k * step_ms`` within ``span_ms``, in a shuffled order (so out of order; the
    coarse step makes records land exactly on each other's bounds)."""
    rng = random.Random(seed)
    out: list[list[Entry]] = []
    for side in ("L", "R"):
        entries: list[Entry] = []
        for i in range(per_side):
            key = f"k{rng.randrange(keys)}"
            ts = T0 + step_ms * rng.randint(0, span_ms // step_ms)
            entries.append((key, {"id": f"{side}{i}", "side": side, "ts": ts}, ts))
        rng.shuffle(entries)
        out.append(entries)
    return out[0], out[1]


def joined(
    left: list[Entry], right: list[Entry], *, before: int, after: int, how: str
) -> Counter[Output]:
    """What ``left.join_interval(right, before=, after=, how=)`` emits with the default joiner,
    every record accepted: each pair once at the later of the two times, and each unmatched
    record (left for ``left``/``outer``, right for ``outer``) once at its own time."""
    out: Counter[Output] = Counter()
    matched: set[str] = set()
    for lk, lv, lts in left:
        for rk, rv, rts in right:
            if lk == rk and lts - before <= rts <= lts + after:
                out[(lk, _frozen([lv, rv]), max(lts, rts))] += 1
                matched.update((lv["id"], rv["id"]))
    if how in ("left", "outer"):
        for k, v, ts in left:
            if v["id"] not in matched:
                out[(k, _frozen([v, None]), ts)] += 1
    if how == "outer":
        for k, v, ts in right:
            if v["id"] not in matched:
                out[(k, _frozen([None, v]), ts)] += 1
    return out


def _frozen(value: Any) -> Any:
    """``value`` hashable: lists as tuples, dicts as sorted item tuples."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


def counted(outputs: list[Output]) -> Counter[Output]:
    """Outputs as the reference counts them."""
    return Counter((k, _frozen(v), ts) for k, v, ts in outputs)
