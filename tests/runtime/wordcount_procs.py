"""Helpers for the runtime's multi-process tests: start and kill job processes, send
sentences, read a job's outputs back and compare them with a brute-force count."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import IO, Any

from redis_streaming import Keys, MQOptions, Producer
from tests.helpers import fast_env, wait_until

ROOT = Path(__file__).resolve().parents[2]
WORDCOUNT = ("-m", "examples.wordcount")
JOB_PROC = ("-m", "tests.runtime.job_proc")


def job_env(url: str, namespace: str, **extra: str) -> dict[str, str]:
    """The environment of a job process: ``url``, ``namespace``, the ``FAST`` lease and
    rebalance values, and ``extra`` (``REDIS_STREAMING_WORDCOUNT__BATCH_SIZE="50"``...)."""
    # PYTHONPATH passes on: tools/mutants.py points it at the copy with the planted bug.
    inherited = {k: os.environ[k] for k in ("PATH", "PYTHONPATH") if k in os.environ}
    return {
        "PATH": "/usr/bin:/bin",
        **inherited,
        "REDIS_STREAMING_REDIS__URL": url,
        "REDIS_STREAMING_MQ__NAMESPACE": namespace,
        "REDIS_STREAMING_LOGGING__LEVEL": "WARNING",
        **fast_env(),
        **extra,
    }


async def start(
    procs: list[subprocess.Popen[bytes]],
    env: dict[str, str],
    args: tuple[str, ...] = WORDCOUNT,
    timeout_s: float = 30.0,
) -> subprocess.Popen[bytes]:
    """Start ``python <args>`` with ``env`` (added to ``procs``, which the fixture reaps) and
    wait until it prints ``ready``."""
    proc = subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE)
    procs.append(proc)
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout_s)
    assert line.strip() == b"ready", f"{args} printed {line!r} (exit code {proc.poll()})"
    # Drain anything printed later, so the process never blocks on a full pipe, and close the
    # pipe when the process is gone.
    threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
    return proc


def _drain(pipe: IO[bytes]) -> None:
    with pipe:
        for _ in pipe:
            pass


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` and reap it."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()


async def stop(procs: list[subprocess.Popen[bytes]], timeout_s: float = 30.0) -> list[int]:
    """SIGTERM every running process of ``procs``; their exit codes once they have stopped."""
    running = [p for p in procs if p.poll() is None]
    for p in running:
        p.send_signal(signal.SIGTERM)
    return [await asyncio.to_thread(p.wait, timeout_s) for p in running]


def sentences(count: int, vocabulary: int, seed: int = 16) -> list[str]:
    """``count`` sentences of 3 to 7 words (5 on average) drawn from ``vocabulary`` words,
    each written in lower, upper or title case (one word whatever its case)."""
    rng = random.Random(seed)
    words = [f"w{n}" for n in range(vocabulary)]
    cases = (str.lower, str.upper, str.title)
    return [
        " ".join(rng.choice(cases)(rng.choice(words)) for _ in range(rng.randint(3, 7)))
        for _ in range(count)
    ]


def true_counts(texts: list[str]) -> dict[str, int]:
    """The brute-force word count of ``texts`` (keys lower-cased)."""
    return dict(Counter(word.lower() for text in texts for word in text.split()))


class Feed:
    """Sends sentences in batches; ``lock`` is held during each batch, so a test can take it to
    inject a fault between batches (and know exactly what was sent)."""

    def __init__(self, redis: Any, options: MQOptions, topic: str = "sentences") -> None:
        self.producer = Producer(redis, options)
        self.topic = topic
        self.lock = asyncio.Lock()
        self.sent = 0

    async def run(self, texts: list[str], batch: int = 500, pause_s: float = 0.02) -> None:
        for i in range(0, len(texts), batch):
            async with self.lock:
                chunk = texts[i : i + batch]
                await self.producer.send_many(self.topic, [{"text": t} for t in chunk])
                self.sent += len(chunk)
            await asyncio.sleep(pause_s)  # pacing: the job processes while sentences arrive


async def output_count(redis: Any, keys: Keys, topic: str, partitions: int) -> int:
    """Entries in ``topic`` over all its partitions."""
    return sum([int(await redis.xlen(keys.stream(topic, p))) for p in range(partitions)])


async def wait_outputs(
    redis: Any, keys: Keys, topic: str, partitions: int, at_least: int, timeout_s: float
) -> float:
    """Wait until ``topic`` holds ``at_least`` entries; returns the seconds it took."""

    async def enough() -> bool:
        return await output_count(redis, keys, topic, partitions) >= at_least

    return await wait_until(enough, timeout_s, f"{at_least} entries in {topic}")


async def read_outputs(
    redis: Any, keys: Keys, topic: str, partitions: int
) -> dict[str, list[dict[str, Any]]]:
    """Every entry of ``topic``: its payloads (JSON) by key, in stream order per partition."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in range(partitions):
        start = "-"
        while True:
            entries = await redis.xrange(keys.stream(topic, p), min=start, count=10_000)
            for _, fields in entries:
                out[fields[b"key"].decode()].append(json.loads(fields[b"payload"]))
            if len(entries) < 10_000:
                break
            start = "(" + entries[-1][0].decode()
    return dict(out)


def exactly_once_problems(
    counts: dict[str, list[int]], truth: dict[str, int], limit: int = 10
) -> list[str]:
    """Where the counts emitted per word differ from 1, 2, ..., truth[word] (at most
    ``limit`` descriptions; none when exactly once)."""
    problems = []
    for word in sorted(set(truth) | set(counts)):
        got, n = counts.get(word, []), truth.get(word, 0)
        if got != list(range(1, n + 1)):
            repeats = len(got) - len(set(got))
            pairs = enumerate(zip(got, range(1, n + 1), strict=False))
            first = next((i for i, (a, b) in pairs if a != b), None)
            problems.append(
                f"{word}: {len(got)} outputs for {n} occurrences, {repeats} repeated, "
                f"first difference at index {first}, last {got[-3:]}"
            )
    return problems[:limit] + (
        [f"... {len(problems)} words in all"] if len(problems) > limit else []
    )
