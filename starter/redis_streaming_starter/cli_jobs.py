"""``redis-streaming jobs list|describe|reset``: the namespace's stream-processing jobs, read
from Redis (every instance's work, whichever process runs it)."""

from __future__ import annotations

import argparse
import datetime
import time
from typing import Any

from redis_streaming import JobCatalog, JobDescription
from redis_streaming_starter.cli_base import EXIT_OK, CliError
from redis_streaming_starter.cli_base import print_result as _print

__all__ = ["add_jobs_parser", "jobs_command"]


def add_jobs_parser(sub: Any, command: Any, json_flag: Any) -> None:
    """Add ``jobs`` and its actions to the command's subparsers (``command(into, name, help)``
    makes a subcommand accepting ``--json``)."""
    jobs = sub.add_parser(
        "jobs", help="list, describe and reset stream-processing jobs", parents=[json_flag]
    )
    j = jobs.add_subparsers(dest="action", required=True)
    command(j, "list", "every job that has run on the namespace: state, stages, lag")
    d = command(j, "describe", "stages, partitions (owner, watermark, lag), stores")
    d.add_argument("name")
    r = command(
        j,
        "reset",
        "forget a stopped job's state, offsets and internal topics (refused while running)",
    )
    r.add_argument("name")
    r.add_argument("--yes", action="store_true", help="confirm the reset")


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat(
        timespec="milliseconds"
    )


def _age(ms: int | None, now_ms: int) -> str:
    return "-" if ms is None else f"{max(0, now_ms - ms) / 1000:.1f}s ago"


def _state(d: JobDescription) -> str:
    return "running" if d.running else "stopped"


def _describe_text(d: JobDescription) -> str:
    now_ms = int(time.time() * 1000)
    lines = [f"job {d.name}: {_state(d)}" + (f" on {', '.join(d.owners)}" if d.owners else "")]
    for s in d.stages:
        kind = " (internal)" if s.internal else ""
        outputs = ", ".join(s.outputs) or "-"
        lines.append(f"  stage {s.group}: reads {s.topic}{kind}, writes {outputs}, lag {s.lag}")
        for p in s.partitions:
            lines.append(
                f"    partition {p.partition}: owner {p.owner or '-'}  lag {p.lag}  "
                f"pending {p.pending}  watermark {_when(p.watermark)}  timers {p.timers}  "
                f"last commit {_age(p.committed_ms, now_ms)}"
            )
        for st in s.stores:
            lines.append(f"    store {st.name}: {st.keys} keys, {st.bytes} bytes")
    return "\n".join(lines)


def _describe_json(d: JobDescription) -> dict[str, Any]:
    return {
        "name": d.name,
        "state": _state(d),
        "owners": d.owners,
        "stages": [
            {
                "id": s.id,
                "group": s.group,
                "topic": s.topic,
                "internal": s.internal,
                "outputs": s.outputs,
                "lag": s.lag,
                "partitions": [vars(p) for p in s.partitions],
                "stores": [{"name": x.name, "keys": x.keys, "bytes": x.bytes} for x in s.stores],
            }
            for s in d.stages
        ],
    }


async def jobs_command(args: argparse.Namespace, redis: Any, settings: Any) -> int:
    """Run ``jobs <action>``; returns the exit code (errors raise, the caller prints them)."""

    catalog = JobCatalog(redis, settings.mq)
    if args.action == "list":
        rows = [await catalog.describe(name) for name in await catalog.names()]
        _print(
            args,
            [
                {
                    "name": d.name,
                    "state": _state(d),
                    "stages": [s.group for s in d.stages],
                    "lag": sum(s.lag for s in d.stages),
                    "owners": d.owners,
                }
                for d in rows
            ],
            lambda v: (
                "\n".join(
                    f"{r['name']}  {r['state']}  {len(r['stages'])} stage(s)  lag {r['lag']}"
                    for r in v
                )
                or "(no jobs)"
            ),
        )
    elif args.action == "describe":
        d = await catalog.describe(args.name)
        if args.json:
            _print(args, _describe_json(d), str)
        else:
            print(_describe_text(d))
    else:
        if not args.yes:
            raise CliError(
                f"resetting job {args.name!r} deletes its state and offsets (it reads its "
                "inputs again when started); stop every instance, then add --yes"
            )
        done = await catalog.reset(args.name)
        _print(
            args,
            done,
            lambda r: (
                f"reset {r.name}: {r.keys_deleted} keys deleted, {r.groups_destroyed} "
                f"consumer groups destroyed, {r.internal_entries_deleted} internal entries deleted"
            ),
        )
    return EXIT_OK
