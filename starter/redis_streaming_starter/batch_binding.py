"""Batch listeners: a listener whose payload parameter is ``list[X]`` (or ``batch=True``) is
called with the members of a batch, each converted to ``X``.

A member whose payload does not fit ``X`` is left out of the call and dead-lettered as
``undecodable`` on its own (the handler raises :class:`~redis_streaming.BatchFailed` naming it
once the others are handled); the rest of the batch is handled as usual.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from dependency_injector import containers
from dependency_injector.wiring import Provide

from redis_streaming import BatchFailed, ConfigurationError, DecodeError, Message
from redis_streaming_starter.binding import _injected, _payload_converter

__all__ = ["BatchHandler", "bind_batch", "is_batch", "wants_batch"]

BatchHandler = Callable[[list[Message]], Awaitable[None]]
_MARK = "__redis_streaming_batch__"


def _params(fn: Callable[..., Any]) -> list[tuple[inspect.Parameter, Any]]:
    """``fn``'s parameters with their resolved annotations."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    return [(p, hints.get(p.name, p.annotation)) for p in inspect.signature(fn).parameters.values()]


def _is_injected(p: inspect.Parameter) -> bool:
    return isinstance(p.default, Provide)  # type: ignore[arg-type]  # a class at run time


def _is_list(annotation: Any) -> bool:
    return annotation is list or typing.get_origin(annotation) is list


def wants_batch(fn: Callable[..., Any], batch: bool | None, where: str) -> bool:
    """Whether ``fn`` is a batch listener: ``batch`` when given, else whether its payload
    parameter (the first one not injected) is annotated ``list[...]``. ``batch=True`` with a
    payload annotation that is not a list (nor absent, nor ``Any``) is a ConfigurationError."""
    payload = next((a for p, a in _params(fn) if not _is_injected(p)), inspect.Parameter.empty)
    if batch is None:
        return _is_list(payload)
    if batch and not _is_list(payload) and payload not in (inspect.Parameter.empty, Any):
        raise ConfigurationError(
            f"{where} has batch=True but its payload parameter is annotated {payload!r}; a batch "
            "listener receives a list: annotate it list[...] (list[Order], list[dict], "
            "list[Message]), or drop batch=True"
        )
    return batch


def bind_batch(fn: Callable[..., Any], container: containers.Container, where: str) -> BatchHandler:
    """Build the batch handler calling ``fn`` with the members' payloads as a list (each
    converted to the element type of the annotation), the members' envelopes for a later
    parameter annotated ``list[Message]``, and injections. ConfigurationError at startup for a
    parameter that cannot be bound."""
    payload_name: str | None = None
    convert: Callable[[Message], Any] = lambda m: m.payload  # noqa: E731
    messages_name: str | None = None
    injections: list[tuple[str, Callable[[], Any]]] = []
    for p, annotation in _params(fn):
        if _is_injected(p):
            injections.append((p.name, _injected(p.default, container, where)))
        elif payload_name is None:
            payload_name = p.name
            args = typing.get_args(annotation) if _is_list(annotation) else ()
            convert = _payload_converter(args[0] if args else Any, where)
        elif annotation == list[Message]:
            messages_name = p.name
        elif annotation is Message:
            raise ConfigurationError(
                f"{where} is a batch listener: parameter {p.name!r} would receive the envelopes "
                "as a list; annotate it list[Message]"
            )
        elif p.default is inspect.Parameter.empty:
            raise ConfigurationError(
                f"{where}: parameter {p.name!r} cannot be bound; batch listeners take the "
                "payloads first (list[...]), then optionally list[Message] and Provide[...] "
                "injections"
            )
    if payload_name is None:
        raise ConfigurationError(
            f"{where} has no parameter for the payloads; declare one, e.g. "
            "`async def handle(orders: list[Order]) -> None`"
        )
    is_async = inspect.iscoroutinefunction(fn)

    async def call(payloads: list[Any], members: list[Message]) -> None:
        kwargs: dict[str, Any] = {payload_name: payloads}
        if messages_name is not None:
            kwargs[messages_name] = members
        for name, provider in injections:
            value = provider()
            kwargs[name] = await value if inspect.isawaitable(value) else value
        if is_async:
            await fn(**kwargs)
        else:
            await asyncio.to_thread(fn, **kwargs)

    async def handler(messages: list[Message]) -> None:
        payloads: list[Any] = []
        members: list[Message] = []
        undecodable: dict[str, Exception] = {}
        for m in messages:
            try:
                payloads.append(convert(m))
            except DecodeError as exc:
                undecodable[m.id] = exc
                continue
            members.append(m)
        if members:
            try:
                await call(payloads, members)
            except BatchFailed as exc:
                if undecodable:
                    raise BatchFailed({**undecodable, **exc.failures}) from exc
                raise
            except Exception as exc:
                if undecodable:  # the handled members failed with it, the others alone
                    raise BatchFailed({**undecodable, **{m.id: exc for m in members}}) from exc
                raise
        if undecodable:
            raise BatchFailed(undecodable)

    handler.__name__ = getattr(fn, "__name__", "listener")
    handler.__qualname__ = getattr(fn, "__qualname__", handler.__name__)
    setattr(handler, _MARK, True)
    return handler


def is_batch(handler: Callable[..., Any]) -> bool:
    """Whether ``handler`` was built by :func:`bind_batch` (subscribe it with ``batch=True``)."""
    return bool(getattr(handler, _MARK, False))
