"""What the ``redis-streaming`` commands share: the one-line error, exit codes, printing (a JSON
document, JSON lines, text) and reading a position (``earliest``, an entry id, a time)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from redis_streaming import TopicInfo

__all__ = [
    "EXIT_FAIL",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "Position",
    "group_positions",
    "id_before",
    "json_line",
    "parse_position",
    "plain",
    "print_result",
    "write_lines",
]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A failure to report in one line, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def plain(value: Any) -> Any:
    """``value`` with dataclasses, bytes and tuples turned into what ``json.dumps`` takes."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def print_result(args: argparse.Namespace, value: Any, text: Callable[[Any], str]) -> None:
    """A command's result: indented JSON with ``--json``, else ``text(value)``."""
    print(json.dumps(plain(value), indent=2) if args.json else text(value))


def json_line(value: Any) -> str:
    """One JSON document on one line (``--json`` output of the commands that stream)."""
    return json.dumps(plain(value), separators=(",", ":"), ensure_ascii=False)


def group_positions(info: TopicInfo, group: str) -> dict[int, tuple[str, int]]:
    """Per partition where ``group`` has a position: (last delivered id, lag). Raises
    :class:`CliError` (exit 1, as for an unknown topic) when it has none on the topic."""
    found = {
        p.partition: (g.last_delivered_id, g.lag)
        for p in info.partitions
        for g in p.groups
        if g.name == group
    }
    if not found:
        groups = sorted({g.name for p in info.partitions for g in p.groups})
        raise CliError(
            f"group {group!r} has no position on topic {info.name!r}; check the name (its "
            f"groups: {', '.join(groups) or 'none'})",
            EXIT_FAIL,
        )
    return found


# -- positions --------------------------------------------------------------------------------

_ENTRY_ID = re.compile(r"(\d+)-(\d+)")
_MAX_SEQ = 2**64 - 1
_EPOCH_MS_FROM = 10**11  # 1973-03-03 in ms; a smaller number is taken for seconds by mistake


@dataclasses.dataclass(frozen=True, slots=True)
class Position:
    """Where to start reading: ``earliest``, ``latest``, the entry ``id`` (included) or the
    first entry at or after ``ms`` (epoch milliseconds)."""

    kind: Literal["earliest", "latest", "id", "time"]
    id: str = ""
    ms: int = 0

    def after(self) -> str:
        """The id of the position just before the start (``"0-0"`` for ``earliest``): a read
        "after" it begins with the start entry. Not for ``latest``."""
        if self.kind == "id":
            return id_before(self.id)
        if self.kind == "time":
            return id_before(f"{self.ms}-0")
        return "0-0"


def id_before(entry_id: str) -> str:
    """The greatest entry id below ``entry_id`` (``"0-0"`` below ``"0-0"``): XRANGE ``(`` and
    XGROUP SETID with it start at ``entry_id`` itself."""
    ms, seq = (int(n) for n in entry_id.split("-"))
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{_MAX_SEQ}" if ms > 0 else "0-0"


def parse_position(text: str, option: str) -> Position:
    """``earliest``, ``latest``, an entry id (``1700000000000-0``), epoch milliseconds
    (``1700000000000``) or an ISO-8601 time (``2026-12-02T10:00:00Z``; local time without an
    offset). Raises :class:`CliError` (usage) saying what is accepted."""
    if text in ("earliest", "latest"):
        return Position(text)  # type: ignore[arg-type]
    if _ENTRY_ID.fullmatch(text):
        ms, seq = (int(n) for n in text.split("-"))
        if seq > _MAX_SEQ or ms > _MAX_SEQ:
            raise CliError(f"{option} {text!r}: not a valid entry id", EXIT_USAGE)
        return Position("id", id=f"{ms}-{seq}")
    if text.isdigit():
        ms = int(text)
        if ms < _EPOCH_MS_FROM:
            raise CliError(
                f"{option} {text}: a time is epoch milliseconds, and {text} ms is in 1970-1973 "
                f"(for epoch seconds add 000: {text}000; for the start use earliest)",
                EXIT_USAGE,
            )
        return Position("time", ms=ms)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(
            f"{option} {text!r}: use earliest, latest, an entry id (1700000000000-0), epoch "
            "milliseconds (1700000000000) or an ISO-8601 time (2026-12-02T10:00:00Z)",
            EXIT_USAGE,
        ) from None
    ms = int(moment.timestamp() * 1000)  # naive: the machine's local time
    if ms < 0:
        raise CliError(f"{option} {text!r}: the time is before 1970", EXIT_USAGE)
    return Position("time", ms=ms)


def write_lines(lines: list[str]) -> None:
    """Print ``lines`` and flush, so that a pipe sees each batch as it comes."""
    if lines:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
