"""``python -m examples.wordcount.send "a sentence" ...``: send sentences to the job (the
arguments, else the lines of stdin) and print the counts of their words once the job has
counted them (at most ``--wait-s`` seconds)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter

from examples.wordcount.job import INPUT, JOB, STORE, Sentence, words
from examples.wordcount.settings import connect, mq_options, read_settings
from redis_streaming import Producer
from redis_streaming.runtime import StateReader


async def send(texts: list[str], wait_s: float) -> dict[str, int]:
    """Send ``texts``; return the counts of their words when each has grown by its number of
    occurrences, or as they are after ``wait_s``."""
    settings = read_settings()
    if not settings.redis.url:
        sys.exit("set REDIS_STREAMING_REDIS__URL to the URL the job printed")
    options = mq_options(settings)
    redis = await connect(settings, settings.redis.url)
    try:
        reader = StateReader(redis, options)
        wanted = Counter(w.lower() for t in texts for w in words(Sentence(text=t)))
        before = await reader.items(JOB, STORE)
        await Producer(redis, options).send_many(INPUT, [Sentence(text=t) for t in texts])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            now = await reader.items(JOB, STORE)
            done = all(now.get(w, 0) >= before.get(w, 0) + n for w, n in wanted.items())
            if done or loop.time() > deadline:
                return {w: now.get(w, 0) for w in sorted(wanted)}
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.wordcount.send")
    parser.add_argument("sentences", nargs="*", help="sentences (default: the lines of stdin)")
    parser.add_argument("--wait-s", type=float, default=10.0, help="how long to wait (10 s)")
    args = parser.parse_args()
    texts = args.sentences or [line for line in sys.stdin.read().splitlines() if line.strip()]
    for word, total in asyncio.run(send(texts, args.wait_s)).items():
        print(f"{word}: {total}")


if __name__ == "__main__":
    main()
