"""``redis-streaming groups reset``: move a consumer group's position, refusing while a consumer
of the group owns a partition (docs/cli.md)."""

from __future__ import annotations

import argparse
from typing import Any

from redis_streaming import Admin, TopicInfo
from redis_streaming_starter.cli_base import (
    EXIT_FAIL,
    EXIT_OK,
    CliError,
    group_positions,
    parse_position,
    print_result,
)
from redis_streaming_starter.settings import Settings

__all__ = ["groups"]


def _owners(info: TopicInfo, group: str) -> dict[int, str]:
    """Per partition whose lease ``group`` has given to a consumer: that consumer."""
    return {
        p.partition: g.owner
        for p in info.partitions
        for g in p.groups
        if g.name == group and g.owner
    }


def _owners_text(owners: dict[int, str]) -> str:
    by_consumer: dict[str, list[int]] = {}
    for partition, consumer in sorted(owners.items()):
        by_consumer.setdefault(consumer, []).append(partition)
    return "; ".join(
        f"consumer {c} owns partition{'s' if len(ps) > 1 else ''} {', '.join(map(str, ps))}"
        for c, ps in by_consumer.items()
    )


async def groups(args: argparse.Namespace, redis: Any, settings: Settings) -> int:
    """``groups reset TOPIC GROUP --to ...``: refuses while the group owns a partition lease,
    unless ``--force``; prints each partition's position and lag before and after."""
    start = parse_position(args.to, "--to")
    admin = Admin(redis, settings.mq)
    before = await admin.describe_topic(args.topic)
    old = group_positions(before, args.group)  # a typo: exit 1, naming the topic's groups
    owners = _owners(before, args.group)
    if owners and not args.force:
        raise CliError(
            f"group {args.group!r} is active on topic {args.topic!r} ({_owners_text(owners)}); "
            "stop its consumers first, or add --force to reset it anyway (they continue from "
            "the new position)",
            EXIT_FAIL,
        )
    # An id is the first entry to read again, as a time is: the group's position goes just
    # before it (Admin.reset_group takes the last entry read).
    to: str | int = start.ms if start.kind == "time" else start.after()
    if start.kind == "latest":
        to = "latest"
    moved = await admin.reset_group(args.topic, args.group, to, partition=args.partition)
    after = group_positions(await admin.describe_topic(args.topic), args.group)
    result = {
        "topic": args.topic,
        "group": args.group,
        "to": args.to,
        "to_ms": start.ms if start.kind == "time" else None,
        "forced": bool(owners),
        "owners": {str(p): c for p, c in sorted(owners.items())},
        "partitions": [
            {
                "partition": p,
                "before": old[p][0] if p in old else None,
                "after": after[p][0],
                "lag_before": old[p][1] if p in old else None,
                "lag_after": after[p][1],
            }
            for p in moved
        ],
    }
    print_result(args, result, _reset_text)
    return EXIT_OK


def _reset_text(result: dict[str, Any]) -> str:
    to = result["to"] if result["to_ms"] is None else f"{result['to']} ({result['to_ms']} ms)"
    lines = [f"group {result['group']} on topic {result['topic']}: reset to {to}"]
    if result["forced"]:
        owners = {int(p): c for p, c in result["owners"].items()}
        lines.append(f"  forced while active: {_owners_text(owners)}")
    for p in result["partitions"]:
        before = p["before"] or "(no position)"
        lag = "" if p["lag_before"] is None else f"{p['lag_before']} -> "
        lines.append(
            f"  partition {p['partition']}: position {before} -> {p['after']}, "
            f"lag {lag}{p['lag_after']}"
        )
    return "\n".join(lines)
