"""Brute-force page statistics for the windowed tests: group clicks by page and one-second
window, count views and distinct users, take the nearest-rank 95th percentile of ``ms``; and
compare a job's results on ``page-stats`` with them."""

from __future__ import annotations

import bisect
import json
import math
from collections import defaultdict
from typing import Any

from examples.pagestats.job import Click

from redis_streaming import Keys
from redis_streaming.aggregation.quantile import rank_error

Window = tuple[str, int]  # (page, window start)
FIELDS = {"page", "window_start", "window_end", "views", "users", "p95_ms"}
EXACT_BELOW = 200  # the KLL sketch (k = 200) keeps every value below this many
SIZE_MS = 1000  # the promise: windows of one second (not the example's constant: a test of it)


def windows_of(clicks: list[Click]) -> dict[Window, list[Click]]:
    """``clicks`` grouped by page and window (``start = ts - ts % 1000``)."""
    size = SIZE_MS
    out: dict[Window, list[Click]] = defaultdict(list)
    for c in clicks:
        out[(c.page, c.ts - c.ts % size)].append(c)
    return dict(out)


def nearest_rank(xs: list[float], q: float) -> float:
    """The smallest x with at least a fraction q of the values <= x."""
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _p95_ok(xs: list[float], value: float) -> bool:
    if len(xs) < EXACT_BELOW:
        return value == nearest_rank(xs, 0.95)
    ordered, eps = sorted(xs), rank_error(200)
    below = bisect.bisect_left(ordered, value) / len(ordered)
    upto = bisect.bisect_right(ordered, value) / len(ordered)
    return below - eps <= 0.95 <= upto + eps


async def read_topic(redis: Any, keys: Keys, topic: str, partitions: int) -> list[Any]:
    """Every entry of ``topic`` as ``(key, payload)``, in stream order per partition."""
    out = []
    for p in range(partitions):
        for _, fields in await redis.xrange(keys.stream(topic, p)):
            key = fields.get(b"key")
            out.append((key.decode() if key else None, json.loads(fields[b"payload"])))
    return out


def problems(results: list[tuple[str | None, dict[str, Any]]], clicks: list[Click]) -> list[str]:
    """How ``results`` (``(key, payload)`` from ``page-stats``) differ from one correct result
    per window of ``clicks`` (at most 10 descriptions; none when they agree)."""
    truth = windows_of(clicks)
    seen: dict[Window, int] = defaultdict(int)
    found: list[str] = []
    for key, r in results:
        if set(r) != FIELDS or key != r["page"]:
            found.append(f"malformed result {key!r}: {r}")
            continue
        w = (r["page"], r["window_start"])
        seen[w] += 1
        group = truth.get(w)
        if group is None:
            found.append(f"a result for no window of the clicks: {r}")
            continue
        expected = {
            "window_end": w[1] + SIZE_MS,
            "views": len(group),
            "users": len({c.user for c in group}),
        }
        got = {k: r[k] for k in expected}
        if got != expected or not _p95_ok([c.ms for c in group], r["p95_ms"]):
            found.append(f"{w}: got {got}, p95 {r['p95_ms']}; expected {expected}, p95 "
                         f"{nearest_rank([c.ms for c in group], 0.95)} (nearest rank)")  # fmt: skip
    found += [f"{w}: {n} results" for w, n in sorted(seen.items()) if n > 1]
    found += [f"{w}: no result ({len(truth[w])} clicks)" for w in sorted(set(truth) - set(seen))]
    return found[:10] + ([f"... {len(found)} problems in all"] if len(found) > 10 else [])
