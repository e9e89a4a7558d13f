"""Helpers to run consumer processes, read what they recorded, and see what consumers are doing
on the server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


async def blocked_reads(admin: Any, client_name: str) -> int:
    """How many connections named ``client_name`` (``CLIENT SETNAME``) are blocked in an
    ``XREADGROUP`` on the server right now (``CLIENT LIST``: flag ``b``)."""
    clients = await admin.client_list()
    return sum(
        1
        for c in clients
        if c.get("name") == client_name and c.get("cmd") == "xreadgroup" and "b" in c["flags"]
    )


def not_reading(admin: Any, client_name: str) -> Callable[[], Awaitable[bool]]:
    """A condition for ``wait_until``: no read of ``client_name`` is blocked on the server, seen
    twice in a row, so a read still on its way to the server cannot slip through."""
    quiet = 0

    async def condition() -> bool:
        nonlocal quiet
        quiet = quiet + 1 if await blocked_reads(admin, client_name) == 0 else 0
        return quiet >= 2

    return condition
