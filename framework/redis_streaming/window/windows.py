"""The window kinds, as ``windows.tumbling(...)`` etc. (``from redis_streaming import windows``).

Durations are seconds (``int``/``float``) or ``timedelta``; event time is in epoch
milliseconds. A size or gap of zero or less raises :class:`~redis_streaming.InvalidArgument`.
"""

from __future__ import annotations

from datetime import timedelta

from redis_streaming.window.kinds import Count, Hopping, Session, Sliding, Tumbling, ms

__all__ = ["count", "hopping", "session", "sliding", "tumbling"]

Duration = float | timedelta


def tumbling(size: Duration, *, offset: Duration = 0) -> Tumbling:
    """Back-to-back windows ``[start, start + size)``, ``start = ts - (ts - offset) % size``
    (aligned to the epoch unless ``offset``)."""
    return Tumbling(ms(size, "a window's size"), ms(offset, "offset", positive=False))


def hopping(size: Duration, slide: Duration, *, offset: Duration = 0) -> Hopping:
    """Windows of ``size`` starting every ``slide`` (``slide <= size``; each record is in
    ``size / slide`` of them)."""
    return Hopping(
        ms(size, "a window's size"),
        ms(slide, "a window's slide"),
        ms(offset, "offset", positive=False),
    )


def sliding(size: Duration) -> Sliding:
    """Kafka Streams' sliding windows: ``[t - size, t]`` for each record's time ``t`` (and the
    window just after each record that a later one falls in); both bounds inclusive."""
    return Sliding(ms(size, "a sliding window's size"))


def session(gap: Duration) -> Session:
    """Per key, records at most ``gap`` apart form one session; sessions merge when a record
    bridges them."""
    return Session(ms(gap, "a session window's gap"))


def count(size: int, slide: int | None = None) -> Count:
    """Windows of ``size`` records per key, a new one every ``slide`` records (default: ``size``,
    tumbling), in arrival order."""
    return Count(size, slide)
