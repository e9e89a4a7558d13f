"""``redis-streaming produce`` and ``redis-streaming tail``: send messages from the command line
or stdin, and read a topic without joining a group (docs/cli.md)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

from redis_streaming import Admin, Message, Producer, ProducerRecord, SendResult, TopicInfo
from redis_streaming_starter.cli_base import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    group_positions,
    json_line,
    parse_position,
    write_lines,
)
from redis_streaming_starter.settings import Settings

__all__ = ["produce", "tail"]

_BATCH = 1000  # stdin lines sent in one pipelined round trip, at most
_PAGE = 500  # entries read per partition and round trip by tail


# -- produce ----------------------------------------------------------------------------------


def _headers(pairs: list[str] | None) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--header {pair!r}: write it as name=value", EXIT_USAGE)
        headers[name] = value
    return headers or None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _payload(text: str, content_type: str, where: str) -> Any:
    """What to send for ``text``: ``auto`` sends a JSON object or array as JSON and anything
    else as text; ``json`` requires JSON; ``text`` sends it as it is."""
    if content_type == "text":
        return text
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        if content_type == "auto":
            return text
        raise CliError(
            f"{where} is not valid JSON ({exc}); send it as text with --content-type text",
            EXIT_USAGE,
        ) from None
    if content_type == "auto" and not isinstance(value, dict | list):
        return text  # 42, true, "x": text unless --content-type json says otherwise
    if isinstance(value, str):
        raise CliError(
            f"{where} is a JSON string, which travels as text/plain; send it with "
            "--content-type text",
            EXIT_USAGE,
        )
    return value


async def _stdin_lines() -> AsyncIterator[list[str]]:
    """Lines of stdin in batches: what has arrived, up to ``_BATCH`` lines, as soon as it has
    (a thread reads, so that a slow pipe or a terminal is sent line by line)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=_BATCH * 4)

    def pump() -> None:
        try:
            for line in sys.stdin:
                asyncio.run_coroutine_threadsafe(queue.put(line), loop).result()
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()
        except (RuntimeError, asyncio.CancelledError):  # the command ended before stdin did
            pass

    threading.Thread(target=pump, name="stdin", daemon=True).start()
    done = False
    while not done:
        batch: list[str] = []
        item = await queue.get()
        while item is not None:
            batch.append(item)
            if len(batch) >= _BATCH or queue.empty():
                break
            item = queue.get_nowait()
        done = item is None
        if batch:
            yield batch


async def produce(args: argparse.Namespace, redis: Any, settings: Settings) -> int:
    """Send the payload argument, or one message per line of stdin (blank lines skipped)."""
    headers = _headers(args.header)
    admin = Admin(redis, settings.mq)
    existed = await admin.store.get(args.topic) is not None
    producer = Producer(redis, settings.mq)
    sent = 0

    async def show(results: list[SendResult]) -> None:
        nonlocal sent
        if not existed and not sent and results:
            meta = await admin.store.get(args.topic)
            print(
                f"redis-streaming: topic {args.topic!r} did not exist; created it with "
                f"{meta.partitions if meta else '?'} partitions (mq.auto_create_topics is on)",
                file=sys.stderr,
            )
        sent += len(results)
        write_lines([_sent_line(args, r) for r in results])

    if args.payload is not None:
        payload = _payload(args.payload, args.content_type, "the payload")
        await show([await producer.send(args.topic, payload, key=args.key, headers=headers)])
        return EXIT_OK
    if sys.stdin.isatty():
        print("reading messages from stdin, one per line; end with Ctrl-D", file=sys.stderr)
    number = 0
    async for lines in _stdin_lines():
        records = []
        for line in lines:
            number += 1
            text = line.rstrip("\r\n")
            if text.strip():
                value = _payload(text, args.content_type, f"line {number}")
                records.append(ProducerRecord(value, key=args.key, headers=headers))
        if records:
            await show(await producer.send_many(args.topic, records))
    return EXIT_OK


def _sent_line(args: argparse.Namespace, result: SendResult) -> str:
    if args.json:
        return json_line(
            {"topic": result.topic, "partition": result.partition, "id": result.message_id}
        )
    return f"partition {result.partition}  {result.message_id}"


# -- tail -------------------------------------------------------------------------------------


def _start(args: argparse.Namespace, info: TopicInfo, parts: list[int]) -> dict[int, str]:
    """Per partition, the id of the last entry not to show."""
    by_partition = {p.partition: p for p in info.partitions}
    if args.group:
        positions = {p: last for p, (last, _) in group_positions(info, args.group).items()}
        # A partition where the group has no position yet (it would get one at the start when
        # a consumer of the group takes it): everything there is still to come for the group.
        return {p: positions.get(p, "0-0") for p in parts}
    start = parse_position(args.start or ("latest" if args.follow else "earliest"), "--from")
    if start.kind == "latest":
        return {p: by_partition[p].last_id or "0-0" for p in parts}
    return {p: start.after() for p in parts}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _message_line(m: Message) -> str:
    """partition, id, key, headers and payload of one message, on one line."""
    headers = ",".join(f"{k}={v}" for k, v in m.headers.items()) or "-"
    if isinstance(m.payload, bytes):
        payload = m.payload.decode(errors="backslashreplace")
    elif isinstance(m.payload, str):
        payload = m.payload
    else:
        payload = json.dumps(m.payload, separators=(",", ":"), ensure_ascii=False)
    key = "-" if m.key is None else m.key
    return f"{m.partition}  {m.id}  {_escape(key)}  {_escape(headers)}  {_escape(payload)}"


def _message_json(m: Message) -> str:
    payload = m.payload
    if isinstance(payload, bytes):
        payload = base64.b64encode(payload).decode()
    return json_line(
        {
            "topic": m.topic, "partition": m.partition, "id": m.id, "key": m.key,
            "headers": m.headers, "timestamp": m.timestamp, "content_type": m.content_type,
            "payload": payload,
        }
    )  # fmt: skip


async def _read(args: argparse.Namespace, admin: Admin, info: TopicInfo, parts: list[int],
                block_ms: int, stop: asyncio.Event) -> None:  # fmt: skip
    after = _start(args, info, parts)
    # Without --follow: up to each partition's last entry as it was when the command started.
    ends = {} if args.follow else {p.partition: p.last_id for p in info.partitions}
    done: set[int] = set()
    if not args.follow:
        done = {p for p in parts if ends[p] is None or _order(after[p]) >= _order(ends[p] or "")}
    left = args.limit
    line = _message_json if args.json else _message_line
    while not stop.is_set() and (left is None or left > 0):
        active = {p: after[p] for p in parts if p not in done}
        if not active:
            return
        count = _PAGE if left is None else min(_PAGE, left)
        batch = await admin.browse(args.topic, active, count=count, block_ms=block_ms)
        if not batch and not args.follow:
            return
        lines = []
        for m in batch:
            if m.partition in done:
                continue
            if ends and _order(m.id) > _order(ends[m.partition] or ""):
                done.add(m.partition)
                continue
            lines.append(line(m))
            after[m.partition] = m.id
            if ends and m.id == ends[m.partition]:
                done.add(m.partition)
            if left is not None:
                left -= 1
                if not left:
                    break
        write_lines(lines)


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def tail(args: argparse.Namespace, redis: Any, settings: Settings) -> int:
    """Print a topic's messages, read without a group; ``--follow`` until SIGINT or SIGTERM."""
    if args.group and args.start:
        raise CliError("--group and --from both say where to start; pass one of them", EXIT_USAGE)
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}", EXIT_USAGE)
    admin = Admin(redis, settings.mq)
    info = await admin.describe_topic(args.topic)
    parts = [p.partition for p in info.partitions]
    if args.partition is not None:
        if args.partition not in parts:
            raise CliError(
                f"--partition {args.partition}: topic {args.topic!r} has partitions "
                f"0..{len(parts) - 1}",
                EXIT_USAGE,
            )
        parts = [args.partition]
    block_ms = settings.mq.block_ms if args.follow else 0
    stop = asyncio.Event()
    try:
        if not args.follow:
            await _read(args, admin, info, parts, block_ms, stop)
            return EXIT_OK
        return await _until_signal(_read(args, admin, info, parts, block_ms, stop), stop)
    except BrokenPipeError:  # `| head`: the reader has gone, which ends the command
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


async def _until_signal(reading: Any, stop: asyncio.Event) -> int:
    """Run ``reading`` until it ends or SIGINT/SIGTERM arrives (then exit code 0)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(reading)

    def signalled() -> None:
        # The cancel ends a blocked read at once; the event ends the loop should the cancel be
        # lost (Python 3.11's asyncio.wait_for, inside redis-py, can swallow one).
        stop.set()
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signalled)
    try:
        await task
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return EXIT_OK
