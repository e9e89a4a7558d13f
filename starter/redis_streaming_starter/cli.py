"""The ``redis-streaming`` command: run an application, manage topics and dead letters; the
message and group commands are in ``cli_messages`` and ``cli_groups``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoPermissionError

from redis_streaming import (
    Admin,
    ConfigurationError,
    DeadLetters,
    RedisStreamingError,
    RedisUnavailable,
    TopicNotFound,
)
from redis_streaming_starter.autoconfigure.redis import connect
from redis_streaming_starter.cli_base import EXIT_FAIL, EXIT_OK, EXIT_USAGE, CliError
from redis_streaming_starter.cli_base import print_result as _print
from redis_streaming_starter.cli_groups import groups
from redis_streaming_starter.cli_jobs import add_jobs_parser, jobs_command
from redis_streaming_starter.cli_messages import produce, tail
from redis_streaming_starter.lifecycle import StartupError
from redis_streaming_starter.masking import mask_url, mask_urls
from redis_streaming_starter.settings import Settings, load_settings

__all__ = ["main"]


def _load_app(target: str) -> Any:
    from redis_streaming_starter.application import RedisStreamingApplication

    module_name, _, attr = target.partition(":")
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        dotted = module_name.removesuffix(".py").replace(os.sep, ".").replace("/", ".")
        raise CliError(
            f"{target!r} is a file; pass the module and attribute instead, e.g. "
            f"{dotted.strip('.')}:{attr or 'app'}",
            EXIT_USAGE,
        )
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"cannot import {module_name!r}: {exc}", EXIT_USAGE) from exc
    app = getattr(module, attr or "app", None)
    if not isinstance(app, RedisStreamingApplication):
        raise CliError(
            f"{target!r} is not a RedisStreamingApplication; pass module:attribute, e.g. "
            "myapp.main:app",
            EXIT_USAGE,
        )
    return app


async def _client(settings: Settings) -> Any:
    url = settings.redis.url
    if settings.redis.sentinel is not None:
        return await connect(settings, "")  # the master the Sentinels name
    if not url:
        raise CliError(
            "redis.url is not set; point the command at your server with "
            "REDIS_STREAMING_REDIS__URL=redis://host:6379/0 (or at your Sentinels with "
            "REDIS_STREAMING_REDIS__SENTINEL__NODES and __MASTER_NAME)",
            EXIT_USAGE,
        )
    try:
        return await connect(settings, url)  # the application's client: a cluster one if need be
    except (RedisUnavailable, ConfigurationError) as exc:
        if isinstance(exc, ConfigurationError) and not isinstance(
            exc.__cause__, AuthenticationError
        ):
            raise
        # Unreachable, or the credentials refused, while checking for a cluster: a plain
        # client, with which `health` reports DOWN and the other commands fail saying why.
        return aioredis.Redis.from_url(
            url,
            socket_timeout=settings.redis.socket_timeout_s,
            socket_connect_timeout=settings.redis.connect_timeout_s,
        )


# -- commands --------------------------------------------------------------------------------


async def _topics(args: argparse.Namespace, redis: Any, settings: Settings) -> int:
    admin = Admin(redis, settings.mq)
    if args.action == "list":
        names = await admin.list_topics()
        _print(args, names, lambda v: "\n".join(v) or "(no topics)")
    elif args.action == "describe":
        info = await admin.describe_topic(args.topic)
        _print(args, info, _describe_text)
    elif args.action == "create":
        meta = await admin.create_topic(
            args.topic,
            args.partitions,
            retention_max_len=args.retention_max_len,
            retention_max_age_ms=args.retention_max_age_ms,
        )
        _print(args, meta, lambda m: f"topic {m.name}: {m.partitions} partitions")
    elif args.action == "add-partitions":
        old = await admin.store.get(args.topic)
        if old is None:
            raise TopicNotFound(args.topic, auto_create_off=False)
        meta = await admin.add_partitions(args.topic, args.partitions)  # the new total
        _print(args, {"topic": meta.name, "partitions_before": old.partitions,
                      "partitions": meta.partitions},
               lambda v: f"topic {v['topic']}: {v['partitions_before']} -> {v['partitions']} "
                         "partitions")  # fmt: skip
    elif args.action == "delete":
        if not args.yes:
            raise CliError(
                f"deleting {args.topic!r} removes all its messages; add --yes to confirm",
                EXIT_USAGE,
            )
        deleted = await admin.delete_topic(args.topic)
        _print(args, {"topic": args.topic, "keys_deleted": deleted},
               lambda v: f"deleted topic {v['topic']} ({v['keys_deleted']} keys)")  # fmt: skip
    return EXIT_OK


def _describe_text(info: Any) -> str:
    lines = [
        f"topic {info.name}: {len(info.partitions)} partitions, dead letters {info.dlq_length}, "
        f"retries scheduled {info.retry_backlog}"
    ]
    for p in info.partitions:
        lines.append(f"  partition {p.partition}: {p.length} entries")
        for g in p.groups:
            lines.append(
                f"    group {g.name}: lag {g.lag}, pending {g.pending}, consumers {g.consumers}, "
                f"owner {g.owner or '-'}"
            )
    return "\n".join(lines)


async def _dlq(args: argparse.Namespace, redis: Any, settings: Settings) -> int:
    dlq = DeadLetters(redis, settings.mq)

    async def known(found: int) -> None:
        # Nothing found: an unknown topic (a typo) is an error, as for `topics describe`. Dead
        # letters of a topic without metadata are still listed, replayed and purged.
        if not found and await Admin(redis, settings.mq).store.get(args.topic) is None:
            raise TopicNotFound(args.topic, auto_create_off=False)

    if args.action == "list":
        entries = await dlq.list(args.topic, group=args.group, count=args.count)
        await known(len(entries))
        _print(args, entries, lambda es: "\n".join(map(_dead_letter_line, es))
               or "(no dead letters)")  # fmt: skip
    elif args.action == "replay":
        n = await dlq.replay(args.topic, ids=args.id or None, group=args.group)
        await known(n)
        _print(args, {"replayed": n}, lambda v: f"replayed {v['replayed']} dead letters")
    elif args.action == "purge":
        if not args.yes and not args.id:
            raise CliError("purging deletes every dead letter of the topic; add --yes", EXIT_USAGE)
        n = await dlq.purge(args.topic, ids=args.id or None)
        await known(n)
        _print(args, {"purged": n}, lambda v: f"purged {v['purged']} dead letters")
    return EXIT_OK


def _dead_letter_line(e: Any) -> str:
    """One line per dead letter: the first line of a multi-line error, ``...`` marking the cut
    (``--json`` has the whole text)."""
    lines = str(e.error).strip().splitlines() or [""]
    error = lines[0] + (" ..." if len(lines) > 1 else "")
    return (
        f"{e.id}  partition {e.partition}  group {e.group}  {e.reason}  attempts {e.attempts}"
        f"  {e.error_type}: {error}"
    )


async def _health(args: argparse.Namespace, redis: Any, settings: Settings) -> int:
    sentinel = settings.redis.sentinel
    shown = sentinel.described() if sentinel is not None else mask_url(settings.redis.url or "")
    result: dict[str, Any] = {"status": "UP", "redis": shown}
    try:
        try:
            info = await redis.info("server")
            result["version"] = info.get("valkey_version") or info.get("redis_version")
        except NoPermissionError:  # a user without INFO (ACL): PING says as much about "UP"
            await redis.ping()
            result["version"] = None
    except Exception as exc:
        result = {"status": "DOWN", "redis": shown, "error": _error_text(exc)}
    _print(args, result, lambda r: f"{r['status']}  {r['redis']}  " + (
        (f"version {r['version']}" if r["version"] else "version unknown (INFO not permitted)")
        if r["status"] == "UP" else r["error"]))  # fmt: skip
    return EXIT_OK if result["status"] == "UP" else EXIT_FAIL


def _error_text(exc: BaseException) -> str:
    """One line for a failed Redis call; credentials refused are not called "unreachable"."""
    cause = exc.__cause__ if isinstance(exc, RedisUnavailable) else exc
    if isinstance(cause, AuthenticationError):
        return (
            f"Redis refused the credentials ({type(cause).__name__}: {cause}); check the user "
            "and password in redis.url (REDIS_STREAMING_REDIS__URL)"
        )
    return mask_urls(str(exc))


Command = Callable[[argparse.Namespace, Any, Settings], Awaitable[int]]


async def _with_redis(command: Command, args: argparse.Namespace, settings: Settings) -> int:
    redis = await _client(settings)
    try:
        return await command(args, redis, settings)
    finally:
        await redis.aclose()


def _parser() -> argparse.ArgumentParser:
    # --json anywhere on the line: on the main parser and on every command's own (SUPPRESS: a
    # command's parser leaves the main parser's value alone unless given after the command).
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                           help="print JSON instead of text")  # fmt: skip
    parser = argparse.ArgumentParser(
        prog="redis-streaming",
        description="Run redis-streaming applications, send and read messages, and manage "
        "topics, groups and dead letters. Settings come from REDIS_STREAMING_* variables and "
        "application.yaml.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(into: Any, name: str, help: str) -> argparse.ArgumentParser:
        made: argparse.ArgumentParser = into.add_parser(name, help=help, parents=[json_flag])
        return made

    run = command(sub, "run", "run an application (module:attribute)")
    run.add_argument("app", help="e.g. myapp.main:app")

    topics = sub.add_parser("topics", help="list, describe, create, grow and delete topics",
                            parents=[json_flag])  # fmt: skip
    t = topics.add_subparsers(dest="action", required=True)
    command(t, "list", "list topic names")
    d = command(t, "describe", "partitions, groups, lag, pending, owners")
    d.add_argument("topic")
    c = command(t, "create", "create a topic (or check an existing one)")
    c.add_argument("topic")
    c.add_argument("-p", "--partitions", type=int, required=True)
    c.add_argument("--retention-max-len", type=int, default=0, help="entries per partition")
    c.add_argument("--retention-max-age-ms", type=int, default=0, help="max entry age, ms")
    a = command(t, "add-partitions", "grow a topic to N partitions in total")
    a.add_argument("topic")
    a.add_argument("partitions", type=int, metavar="N", help="the new total (as Kafka's)")
    x = command(t, "delete", "delete a topic and every key it has")
    x.add_argument("topic")
    x.add_argument("--yes", action="store_true", help="confirm the deletion")

    dlq = sub.add_parser("dlq", help="browse, replay and purge dead letters", parents=[json_flag])
    q = dlq.add_subparsers(dest="action", required=True)
    ql = command(q, "list", "newest dead letters first")
    ql.add_argument("topic")
    ql.add_argument("--group")
    ql.add_argument("--count", type=int, default=20)
    qr = command(q, "replay", "send dead letters back to the group that failed them")
    qr.add_argument("topic")
    qr.add_argument("--id", action="append", help="only this entry (repeatable)")
    qr.add_argument("--group", help="only this group's dead letters")
    qp = command(q, "purge", "delete dead letters")
    qp.add_argument("topic")
    qp.add_argument("--id", action="append", help="only this entry (repeatable)")
    qp.add_argument("--yes", action="store_true", help="confirm purging all")

    _message_parsers(command, sub)
    group_parser = sub.add_parser("groups", help="move a consumer group's position",
                                  parents=[json_flag])  # fmt: skip
    g = group_parser.add_subparsers(dest="action", required=True)
    r = command(g, "reset", "move the group's position (refused while a consumer owns a partition)")
    r.add_argument("topic")
    r.add_argument("group")
    r.add_argument("--to", required=True, metavar="earliest|latest|ID|TIME",
                   help="the first entry to read next: earliest, latest (only new ones), an entry "
                   "id, epoch ms or an ISO-8601 time (the first entry at or after it)")  # fmt: skip
    r.add_argument("--partition", type=int, help="only this partition")
    r.add_argument("--force", action="store_true",
                   help="reset even while consumers of the group own partitions")  # fmt: skip

    add_jobs_parser(sub, command, json_flag)
    command(sub, "health", "check that Redis answers (exit 1 when DOWN)")
    return parser


def _message_parsers(command: Any, sub: Any) -> None:
    p = command(sub, "produce", "send messages: the payload argument, else one per stdin line")
    p.add_argument("topic")
    p.add_argument("payload", nargs="?", help="the message (default: one per line of stdin)")
    p.add_argument("--key", help="message key (its partition: crc32(key) %% partitions)")
    p.add_argument("--header", action="append", metavar="NAME=VALUE",
                   help="a header (repeatable)")  # fmt: skip
    p.add_argument("--content-type", choices=("auto", "json", "text"), default="auto",
                   help="auto (default): a JSON object or array is sent as JSON, anything else "
                   "as text; json: every payload must be JSON; text: sent as it is")  # fmt: skip

    t = command(sub, "tail", "print a topic's messages without joining a group")
    t.add_argument("topic")
    t.add_argument("--from", dest="start", metavar="earliest|latest|ID|TIME",
                   help="first message: earliest, latest, an entry id, epoch ms or an ISO-8601 "
                   "time (default: earliest, or latest with --follow)")  # fmt: skip
    t.add_argument("--group", help="start where this group is: what it has not read yet")
    t.add_argument("--follow", "-f", action="store_true",
                   help="keep printing new messages until Ctrl-C or SIGTERM")  # fmt: skip
    t.add_argument("--partition", type=int, help="only this partition")
    t.add_argument("--limit", type=int, help="stop after N messages")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``redis-streaming`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            _load_app(args.app).run()
            return EXIT_OK
        # The application's own sections (a Settings subclass) are unknown here: accept
        # names that resemble no setting; near misses (REDIS_STREAMING_REDIS_URL) still fail.
        settings = load_settings(foreign_sections=True)
        commands: dict[str, Command] = {
            "topics": _topics, "dlq": _dlq, "health": _health,
            "produce": produce, "tail": tail, "groups": groups, "jobs": jobs_command,
        }  # fmt: skip
        try:
            return asyncio.run(_with_redis(commands[args.command], args, settings))
        except KeyboardInterrupt:  # Ctrl-C in produce or tail (tail --follow handles it: 0)
            return 130
    except CliError as exc:
        print(f"redis-streaming: {mask_urls(str(exc))}", file=sys.stderr)
        return exc.code
    except TopicNotFound as exc:
        print(f"redis-streaming: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except (RedisStreamingError, ValueError) as exc:
        print(f"redis-streaming: {_error_text(exc)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ValueError | StartupError) else EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
