"""Brute-force references for the window tests, written from the documented rules alone.

Records are replayed in arrival order. The watermark before each record is the largest event
time of the records before it minus ``max_out_of_orderness`` (the watermark is per input
partition: the tests use one). Lateness follows docs: a tumbling/hopping record is late when
every window it belongs to has ``end + grace <= wm``; a session/sliding record when ``ts + grace
<= wm``; count windows have none. Windows and their aggregates are then computed from the
accepted records directly (grouping, connected components, the Kafka Streams sliding windows,
arrival indexes), never by the framework's incremental code.

A record is a dict ``{"id", "k", "ts", "v"}``; an aggregate is the tests' ``summary``: record
count, sum of ``v`` and the ids in event-time order (ties by arrival), as ``agg.count()``,
``agg.sum(...)`` and ``agg.collect(...)`` give them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Rec = dict[str, Any]
Result = tuple[str, int, int, dict[str, Any]]  # (key, start, end, aggregate)
Windows = Callable[[list[Rec]], list[tuple[int, int]]]  # a key's accepted records -> bounds


@dataclass
class Expected:
    """What a windowed job must produce for its input."""

    final: list[Result] = field(default_factory=list)  # sorted
    current: list[Result] = field(default_factory=list)  # in emit order
    late: list[Rec] = field(default_factory=list)  # in arrival order


def summary(records: list[Rec]) -> dict[str, Any]:
    """count, sum and collect of ``records`` (given in arrival order)."""
    ordered = sorted(records, key=lambda r: r["ts"])  # stable: ties stay in arrival order
    return {"n": len(records), "s": sum(r["v"] for r in records), "c": [r["id"] for r in ordered]}


def watermarks(records: list[Rec], ooo: int) -> list[int | None]:
    """The watermark before each record (None before the first)."""
    out: list[int | None] = []
    top: int | None = None
    for r in records:
        out.append(None if top is None else top - ooo)
        top = r["ts"] if top is None else max(top, r["ts"])
    return out


def hopping(records: list[Rec], size: int, slide: int, grace: int, ooo: int) -> Expected:
    """Tumbling (``slide == size``) and hopping windows ``[k*slide, k*slide + size)``."""
    exp = Expected()
    members: dict[tuple[str, int], list[Rec]] = defaultdict(list)
    for r, wm in zip(records, watermarks(records, ooo), strict=True):
        ts = r["ts"]
        starts = [k * slide for k in range((ts - size) // slide + 1, ts // slide + 1)]
        assert starts
        assert all(s <= ts < s + size for s in starts)
        open_ = [s for s in starts if wm is None or s + size + grace > wm]
        if not open_:
            exp.late.append(r)
            continue
        for s in open_:
            members[(r["k"], s)].append(r)
            exp.current.append((r["k"], s, s + size, summary(members[(r["k"], s)])))
    last = max(r["ts"] for r in records) - ooo
    exp.final = sorted(
        (
            (k, s, s + size, summary(rs))
            for (k, s), rs in members.items()
            if s + size + grace <= last
        ),
        key=lambda w: w[:3],
    )
    return exp


def _late(records: list[Rec], ooo: int, grace: int) -> list[Rec]:
    """The records with ``ts + grace <= wm`` (late for sessions and sliding windows)."""
    marks = watermarks(records, ooo)
    return [
        r for r, wm in zip(records, marks, strict=True) if wm is not None and r["ts"] + grace <= wm
    ]


def sessions(recs: list[Rec], gap: int) -> list[tuple[int, int]]:
    """Connected components of the records' times, neighbours at most ``gap`` apart."""
    times = sorted(r["ts"] for r in recs)
    out: list[tuple[int, int]] = []
    for t in times:
        if out and t - out[-1][1] <= gap:
            out[-1] = (out[-1][0], t)
        else:
            out.append((t, t))
    return out


def sliding(recs: list[Rec], size: int) -> list[tuple[int, int]]:
    """Kafka Streams' sliding windows (bounds inclusive): ``[t - size, t]`` for each record,
    ``[t + 1, t + 1 + size]`` when a record later than ``t`` falls in it."""
    times = {r["ts"] for r in recs}
    bounds = {(t - size, t) for t in times}
    bounds |= {(t + 1, t + 1 + size) for t in times if any(t < u <= t + 1 + size for u in times)}
    return sorted(bounds)


def by_time(
    records: list[Rec], windows: Windows, close_after: int, grace: int, ooo: int
) -> Expected:
    """Session (``windows`` = sessions, ``close_after`` = gap) or sliding (``close_after`` = 0)
    windows; a window ``[start, end]`` closes at ``wm >= end + close_after + grace``."""
    exp = Expected()
    exp.late = _late(records, ooo, grace)
    late_ids = {r["id"] for r in exp.late}
    seen: dict[str, list[Rec]] = defaultdict(list)
    for r in records:
        if r["id"] in late_ids:
            continue
        mine = seen[r["k"]]
        mine.append(r)
        hit = [(s, e) for s, e in windows(mine) if s <= r["ts"] <= e]
        for s, e in sorted(hit, key=lambda b: (b[1], b[0])):
            exp.current.append((r["k"], s, e, summary([m for m in mine if s <= m["ts"] <= e])))
    last = max(r["ts"] for r in records) - ooo
    for k, mine in seen.items():
        for s, e in windows(mine):
            if e + close_after + grace <= last:
                exp.final.append((k, s, e, summary([m for m in mine if s <= m["ts"] <= e])))
    exp.final.sort(key=lambda w: w[:3])
    return exp


def count(records: list[Rec], size: int, slide: int) -> Expected:
    """Count windows per key by arrival index: ``[k*slide, k*slide + size)``; no lateness."""
    exp = Expected()
    seen: dict[str, list[Rec]] = defaultdict(list)
    for r in records:
        mine = seen[r["k"]]
        mine.append(r)
        i = len(mine) - 1
        for s in range(0, i + 1, slide):
            if i < s + size:
                exp.current.append((r["k"], s, i + 1, summary(mine[s : i + 1])))
    for k, mine in seen.items():
        for s in range(0, len(mine) - size + 1, slide):
            exp.final.append((k, s, s + size, summary(mine[s : s + size])))
    exp.final.sort(key=lambda w: w[:3])
    return exp
