"""``python -m examples.pagestats.send``: send generated clicks to the job, then print the
final statistics of the windows they fall in once the job has emitted them (at most
``--wait-s`` seconds: a window closes ``GRACE_S`` after its end in event time, or
``IDLE_TIMEOUT_S`` after the last click when nothing follows).

Clicks are spread evenly over ``--seconds`` of event time from ``--start-ms`` (default: now),
each on a random page and by a random user, with a random load time; they are sent keyed by
page, in event-time order, paced so that each goes out about when its event time comes (unless
``--no-pace``). One line per window: ``<page> <window_start> views=.. users=.. p95_ms=..``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from typing import Any

from examples.pagestats.job import INPUT, OUTPUT, WINDOW_S, Click
from examples.pagestats.settings import connect, mq_options, read_settings
from redis_streaming import Admin, Keys, Producer, ProducerRecord

__all__ = ["PAGES", "clicks", "read_stats", "send"]

PAGES = ["/", "/docs", "/pricing", "/blog", "/about", "/login", "/signup", "/search"]


def clicks(
    count: int, pages: int, users: int, start_ms: int, seconds: float, seed: int = 17
) -> list[Click]:
    """``count`` clicks in event-time order, evenly spread over ``seconds`` from ``start_ms``,
    on ``pages`` pages (``PAGES``, then ``/p<n>``) by ``users`` users; load times lognormal
    (median about 90 ms), rounded to 0.1 ms."""
    rng = random.Random(seed)
    names = [PAGES[i] if i < len(PAGES) else f"/p{i}" for i in range(pages)]
    step = seconds * 1000 / max(count, 1)
    return [
        Click(
            page=rng.choice(names),
            user=f"u{rng.randrange(users)}",
            ms=round(rng.lognormvariate(4.5, 0.6), 1),
            ts=start_ms + int(i * step),
        )
        for i in range(count)
    ]


async def read_stats(redis: Any, keys: Keys, partitions: int) -> list[dict[str, Any]]:
    """Every result on ``page-stats`` so far (payloads), in stream order per partition."""
    out: list[dict[str, Any]] = []
    for p in range(partitions):
        for _, fields in await redis.xrange(keys.stream(OUTPUT, p)):
            out.append(json.loads(fields[b"payload"]))
    return out


async def send(sent: list[Click], wait_s: float, pace: bool) -> list[dict[str, Any]]:
    """Send ``sent``; return the results of the windows they fall in, once all are out or as
    they are after ``wait_s``."""
    settings = read_settings()
    if not settings.redis.url:
        sys.exit("set REDIS_STREAMING_REDIS__URL to the URL the job printed")
    options = mq_options(settings)
    keys = Keys(options.namespace)
    redis = await connect(settings, settings.redis.url)
    try:
        producer = Producer(redis, options)
        loop = asyncio.get_running_loop()
        began = loop.time()
        first = sent[0].ts if sent else 0
        for click in sent:
            if pace:  # each click about when its event time comes
                await asyncio.sleep(max(0.0, began + (click.ts - first) / 1000 - loop.time()))
            await producer.send_many(INPUT, [ProducerRecord(click, key=click.page)])
        size = WINDOW_S * 1000
        wanted = {(c.page, c.ts - c.ts % size) for c in sent}
        partitions = len((await Admin(redis, options).describe_topic(OUTPUT)).partitions)
        deadline = loop.time() + wait_s
        while True:
            stats = [
                s for s in await read_stats(redis, keys, partitions)
                if (s["page"], s["window_start"]) in wanted
            ]  # fmt: skip
            if len(stats) >= len(wanted) or loop.time() > deadline:
                return sorted(stats, key=lambda s: (s["window_start"], s["page"]))
            await asyncio.sleep(0.2)
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.pagestats.send")
    parser.add_argument("--clicks", type=int, default=200, help="how many (200)")
    parser.add_argument("--pages", type=int, default=4, help="on how many pages (4)")
    parser.add_argument("--users", type=int, default=30, help="by how many users (30)")
    parser.add_argument("--seconds", type=float, default=3.0, help="event-time span (3 s)")
    parser.add_argument("--start-ms", type=int, default=None, help="first event time (now)")
    parser.add_argument("--seed", type=int, default=17, help="random seed (17)")
    parser.add_argument("--no-pace", action="store_true", help="send all at once")
    parser.add_argument("--wait-s", type=float, default=20.0, help="how long to wait (20 s)")
    args = parser.parse_args()
    start_ms = int(time.time() * 1000) if args.start_ms is None else args.start_ms
    sent = clicks(args.clicks, args.pages, args.users, start_ms, args.seconds, args.seed)
    for s in asyncio.run(send(sent, args.wait_s, not args.no_pace)):
        print(f"{s['page']} {s['window_start']} views={s['views']} users={s['users']} "
              f"p95_ms={s['p95_ms']}")  # fmt: skip


if __name__ == "__main__":
    main()
