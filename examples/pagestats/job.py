"""The page statistics job: clicks in, one result per page and second of event time out.

``clicks`` (``{"page": str, "user": str, "ms": float, "ts": int}``, ``ts`` the click's event
time in epoch milliseconds) is keyed by page (a repartition: every click of one page reaches one
partition of the job), cut into tumbling windows of one second aligned to the epoch (``start =
ts - ts % 1000``), and each window's final result goes to ``page-stats`` as ``{"page",
"window_start", "window_end", "views", "users", "p95_ms"}`` keyed by the page: the number of
clicks, of distinct users (exact up to 1,000 a window) and the 95th percentile of ``ms``
(approximate: a KLL sketch, exact nearest-rank below 200 clicks).

A window closes once the partition's watermark (the largest event time seen) reaches its end
plus ``GRACE_S``; a click that comes after every window it belongs to has closed goes to
``clicks-late`` instead. A partition that receives nothing for ``IDLE_TIMEOUT_S`` moves its
watermark on with the wall clock, so the last windows close without new clicks. Each window's
result is emitted exactly once, across crashes and takeovers (results, window state, timers and
the watermark commit together).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from redis_streaming import Job, Stream, WindowResult, agg, windows

__all__ = [
    "GRACE_S",
    "IDLE_TIMEOUT_S",
    "INPUT",
    "JOB",
    "LATE",
    "OUTPUT",
    "PARTITIONS",
    "WINDOW_S",
    "Click",
    "PageStats",
    "build_job",
    "page_stats",
    "window_stats",
]

JOB = "pagestats"
INPUT = "clicks"
OUTPUT = "page-stats"
LATE = "clicks-late"
PARTITIONS = 4
WINDOW_S = 1
GRACE_S = 2
IDLE_TIMEOUT_S = 3


class Click(BaseModel):
    """One input record: ``user`` viewed ``page``, which took ``ms`` milliseconds to load, at
    ``ts`` (epoch milliseconds)."""

    page: str
    user: str
    ms: float
    ts: int


class PageStats(BaseModel):
    """One output record: the clicks of ``page`` with ``window_start <= ts < window_end``
    (epoch ms): ``views`` clicks by ``users`` distinct users, 95 % of them loaded in at most
    ``p95_ms``."""

    page: str
    window_start: int
    window_end: int
    views: int
    users: int
    p95_ms: float


def page_stats(result: WindowResult) -> PageStats:
    """The output record of one window's final result."""
    value: dict[str, Any] = result.value
    return PageStats(
        page=result.key or "",
        window_start=result.start,
        window_end=result.end,
        views=value["views"],
        users=value["users"],
        p95_ms=value["p95_ms"],
    )


def window_stats(clicks: Stream, late_to: str | None = LATE) -> Stream:
    """``clicks`` (keyed by page) in one-second windows, as :class:`PageStats` per window."""
    return (
        clicks.window(
            windows.tumbling(WINDOW_S),
            grace=GRACE_S,
            idle_timeout=IDLE_TIMEOUT_S,
            late_to=late_to,
        )
        .aggregate(
            views=agg.count(),
            users=agg.count_distinct(lambda c: c.user),
            p95_ms=agg.quantile(lambda c: c.ms, 0.95),
        )
        .final()
        .map(page_stats)
    )


def build_job(partitions: int = PARTITIONS) -> Job:
    """The job ``pagestats``; ``partitions`` is the partition count of its internal topic."""
    job = Job(JOB, partitions=partitions)
    clicks = job.source(INPUT, value_type=Click, timestamp=lambda c: c.ts).key_by(lambda c: c.page)
    window_stats(clicks).to(OUTPUT)
    return job
