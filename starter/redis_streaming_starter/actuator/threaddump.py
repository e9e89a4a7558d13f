"""Actuator endpoint ``/threaddump``: every thread's stack and every asyncio task's await chain.

JSON by default (Spring's shape, plus ``tasks``), a readable text dump with ``Accept: text/plain``.
Stacks list the innermost frame first, as Java's do. A task's ``stackTrace`` follows its await
chain (coroutine awaiting coroutine ...) down to what it waits for (``awaiting``), which is what
you want to see when a listener hangs.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from redis_streaming_starter.actuator.context import ActuatorContext

__all__ = ["ThreadDump", "routes"]

_MAX_DEPTH = 200
# Where a thread's innermost Python frame sits when it blocks (the C call below has no frame).
_WAITS = {
    ("threading.py", "wait"), ("threading.py", "_wait_for_tstate_lock"),
    ("queue.py", "get"), ("selectors.py", "select"), ("thread.py", "_worker"),
}  # fmt: skip


class StackFrame(BaseModel):
    className: str = Field(description="Module, plus the class for a method.")
    methodName: str
    fileName: str
    lineNumber: int


class ThreadInfo(BaseModel):
    threadName: str
    threadId: int = Field(description="threading ident.")
    nativeId: int | None = Field(description="The operating system's thread id.")
    daemon: bool
    threadState: str = Field(
        description="RUNNABLE or WAITING: a guess from the innermost frame (Python keeps no "
        "thread states)."
    )
    stackTrace: list[StackFrame]


class TaskInfo(BaseModel):
    name: str
    state: str = Field(description="PENDING, or CANCELLING once cancel() was requested.")
    coroutine: str = Field(description="Qualified name of the task's coroutine.")
    awaiting: str | None = Field(description="The future or task it waits for, if any.")
    stackTrace: list[StackFrame] = Field(description="The await chain, innermost first.")


class ThreadDump(BaseModel):
    """``GET /threaddump``."""

    threads: list[ThreadInfo]
    tasks: list[TaskInfo] = Field(description="asyncio tasks of the application's event loop.")


def routes(ctx: ActuatorContext) -> APIRouter:
    """``/threaddump`` when ``threaddump`` is exposed."""
    router = ctx.router(sensitive=True)
    if not ctx.is_exposed("threaddump"):
        return router

    @router.get(
        "/threaddump",
        summary="Thread stacks and asyncio tasks (JSON, or text/plain via Accept)",
        response_model=ThreadDump,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def threaddump(request: Request) -> Response | ThreadDump:
        dump = ThreadDump(threads=_threads(), tasks=_tasks())
        if _wants_text(request.headers.get("accept", "")):
            return PlainTextResponse(render_text(dump))
        return dump

    return router


def _wants_text(accept: str) -> bool:
    """text/plain named before any JSON type (no q-value ranking: clients ask for one)."""
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media == "text/plain":
            return True
        if media.endswith("json") or media in ("*/*", "application/*"):
            return False
    return False


def _threads() -> list[ThreadInfo]:
    frames = sys._current_frames()
    by_ident = {t.ident: t for t in threading.enumerate()}
    current = threading.get_ident()
    out = []
    for ident, frame in frames.items():
        thread = by_ident.get(ident)
        stack = [_frame(f) for f in _walk(frame)]
        waiting = ident != current and bool(stack) and _blocked(frame)
        out.append(
            ThreadInfo(
                threadName=thread.name if thread else f"Thread-{ident}",
                threadId=ident,
                nativeId=thread.native_id if thread else None,
                daemon=thread.daemon if thread else True,
                threadState="WAITING" if waiting else "RUNNABLE",
                stackTrace=stack,
            )
        )
    return sorted(out, key=lambda t: t.threadName)


def _walk(frame: FrameType | None) -> Iterator[FrameType]:
    depth = 0
    while frame is not None and depth < _MAX_DEPTH:
        yield frame
        frame, depth = frame.f_back, depth + 1


def _blocked(frame: FrameType) -> bool:
    file = frame.f_code.co_filename.rsplit("/", 1)[-1]
    return (file, frame.f_code.co_name) in _WAITS


def _frame(frame: FrameType) -> StackFrame:
    code = frame.f_code
    module = str(frame.f_globals.get("__name__", "?"))
    owner, _, _ = code.co_qualname.rpartition(".")
    return StackFrame(
        className=f"{module}.{owner}" if owner else module,
        methodName=code.co_name,
        fileName=code.co_filename,
        lineNumber=frame.f_lineno or 0,
    )


def _tasks() -> list[TaskInfo]:
    out = []
    for task in asyncio.all_tasks():
        coro: Any = task.get_coro()
        chain: list[StackFrame] = []
        obj: Any = coro
        while obj is not None and len(chain) < _MAX_DEPTH:
            frame = _attr(obj, "cr_frame", "gi_frame", "ag_frame")
            if frame is not None:
                chain.append(_frame(frame))
            obj = _attr(obj, "cr_await", "gi_yieldfrom", "ag_await")
        chain.reverse()
        out.append(
            TaskInfo(
                name=task.get_name(),
                state="CANCELLING" if task.cancelling() else "PENDING",
                coroutine=getattr(coro, "__qualname__", type(coro).__qualname__),
                awaiting=_describe(getattr(task, "_fut_waiter", None)),
                stackTrace=chain,
            )
        )
    return sorted(out, key=lambda t: t.name)


def _attr(obj: Any, *names: str) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _describe(waiter: Any) -> str | None:
    if waiter is None:
        return None
    if isinstance(waiter, asyncio.Task):
        return f"Task {waiter.get_name()!r}"
    return f"{type(waiter).__name__} {'done' if waiter.done() else 'pending'}"


def render_text(dump: ThreadDump) -> str:
    """A jstack-like text dump."""
    lines = [f"Thread dump: {len(dump.threads)} threads, {len(dump.tasks)} asyncio tasks", ""]
    for t in dump.threads:
        daemon = " daemon" if t.daemon else ""
        lines.append(f'"{t.threadName}" #{t.threadId}{daemon} {t.threadState}')
        lines.extend(_text_stack(t.stackTrace))
        lines.append("")
    for task in dump.tasks:
        waits = f" awaiting {task.awaiting}" if task.awaiting else ""
        lines.append(f'Task "{task.name}" {task.state} {task.coroutine}{waits}')
        lines.extend(_text_stack(task.stackTrace))
        lines.append("")
    return "\n".join(lines)


def _text_stack(stack: list[StackFrame]) -> list[str]:
    return [f"\tat {f.className}.{f.methodName} ({f.fileName}:{f.lineNumber})" for f in stack]
