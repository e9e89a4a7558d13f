"""Helpers to run consumer processes and read what they recorded."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from redis_streaming import MQOptions

SCRIPT = Path(__file__).with_name("consumer_proc.py")


def spawn(
    url: str,
    options: MQOptions,
    topic: str,
    group: str,
    consumer_id: str,
    record_key: str,
    handler_ms: int = 0,
    *extra: str,
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), url, options.model_dump_json(), topic, group,
         consumer_id, record_key, str(handler_ms), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@dataclass(frozen=True)
class Record:
    consumer: str
    partition: int
    key: str
    n: int
    attempt: int
    start: float
    end: float


def parse(raw: list[bytes]) -> list[Record]:
    out = []
    for item in raw:
        c, p, k, n, a, s, e = item.decode().split("|")
        out.append(Record(c, int(p), k, int(n), int(a), float(s), float(e)))
    return out
