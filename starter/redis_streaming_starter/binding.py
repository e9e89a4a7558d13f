"""Adapting a listener function to a ``Message`` handler: payload, header binding and
injection."""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from dependency_injector import containers
from dependency_injector.wiring import Provide
from pydantic import BaseModel, TypeAdapter, ValidationError

from redis_streaming import ConfigurationError, DecodeError, Message
from redis_streaming_starter.headers import header_binder

__all__ = ["Handler", "Yielded", "bind"]

MessageHandler = Callable[[Message], Awaitable[Any]]
"""A bound listener of one message: returns what the listener returned (a :class:`Yielded`
list for a generator listener)."""
# A bound listener: of one message, or for a batch listener (see batch_binding) of a list.
Handler = MessageHandler | Callable[[list[Message]], Awaitable[None]]


class Yielded(list[Any]):
    """The items a generator listener yielded, in order (each one a result of its own)."""


def _payload_converter(annotation: Any, where: str) -> Callable[[Message], Any]:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return lambda m: m.payload
    if annotation is Message:
        return lambda m: m
    if annotation is bytes:
        return lambda m: m.raw
    if annotation is str:

        def text(m: Message) -> str:
            if isinstance(m.payload, str):
                return m.payload
            try:
                return m.raw.decode()
            except UnicodeDecodeError as exc:
                raise DecodeError(f"{where}: payload is not UTF-8 text") from exc

        return text
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        model = annotation

        def to_model(m: Message) -> Any:
            try:
                return model.model_validate(m.payload)
            except ValidationError as exc:
                raise DecodeError(
                    f"{where}: payload is not a valid {model.__name__}: {_problems(exc)}"
                ) from None

        return to_model
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    except Exception as exc:
        raise ConfigurationError(f"{where}: cannot bind payloads to {annotation!r}: {exc}") from exc

    def adapt(m: Message) -> Any:
        try:
            return adapter.validate_python(m.payload)
        except ValidationError as exc:
            raise DecodeError(
                f"{where}: payload does not match {annotation!r}: {_problems(exc)}"
            ) from None

    return adapt


_SHOWN_PROBLEMS = 10


def _problems(exc: ValidationError) -> str:
    """What is wrong with a payload, *without* the payload: pydantic's own text quotes the
    input (``input_value='card=4111...'``), and this text goes to the log, the listener's
    ``lastError`` (health, /listeners) and the dead letter's ``error``. The dead letter keeps
    the payload itself. (Raised ``from None`` for the same reason: a chained ValidationError
    would print the input in tracebacks.)"""
    errors = exc.errors(include_input=False, include_url=False)
    shown = [
        f"{'.'.join(str(p) for p in e['loc']) or '(the payload)'}: {e['msg']} [{e['type']}]"
        for e in errors[:_SHOWN_PROBLEMS]
    ]
    more = len(errors) - len(shown)
    count = f"{len(errors)} validation error{'s' if len(errors) != 1 else ''}"
    return f"{count}: " + "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def _injected(marker: Any, container: containers.Container, where: str) -> Callable[[], Any]:
    target = marker.provider
    name: str | None = target if isinstance(target, str) else None
    if name is None:
        declared = getattr(container, "declarative_parent", None) or type(container)
        for attr, value in getattr(declared, "providers", {}).items():
            if value is target:
                name = attr
                break
    provider = getattr(container, name, None) if name else None
    if provider is None:
        raise ConfigurationError(
            f"{where}: Provide[{target!r}] names no provider of {type(container).__name__}; "
            "use Provide[YourContainer.name] or Provide['name'] of a provider it declares"
        )
    return provider  # type: ignore[no-any-return]


_Binder = tuple[str, Callable[[Message], Any] | None, Callable[[], Any] | None]


def _binders(fn: Callable[..., Any], container: containers.Container, where: str) -> list[_Binder]:
    """(parameter, converter of the message, provider) for each parameter ``fn`` is called with:
    ``Provide[...]`` defaults are injections, ``Header``/``Headers`` parameters headers, the
    first other parameter takes the payload, a later one annotated ``Message`` the envelope;
    others must have a default, which they keep."""
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
        extras = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        hints = extras = {}
    params = list(sig.parameters.values())
    if not params:
        raise ConfigurationError(
            f"{where} has no parameter for the payload; declare one, e.g. "
            "`async def handle(order: Order) -> None` (or `message: Message`)"
        )
    payload_param: str | None = None
    binders: list[_Binder] = []
    for p in params:
        annotation = hints.get(p.name, p.annotation)
        if isinstance(p.default, Provide):  # type: ignore[arg-type]  # a class at run time
            binders.append((p.name, None, _injected(p.default, container, where)))
        elif header := header_binder(p.name, extras.get(p.name), p.default, where):
            binders.append((p.name, header, None))
        elif annotation is Message and payload_param is not None:
            binders.append((p.name, lambda m: m, None))
        elif payload_param is None:
            payload_param = p.name
            binders.append((p.name, _payload_converter(annotation, where), None))
        elif p.default is inspect.Parameter.empty:
            raise ConfigurationError(
                f"{where}: parameter {p.name!r} cannot be bound; listeners take the payload "
                "first, then optionally a `Message`, `Header[...]`/`Headers` parameters and "
                "Provide[...] injections"
            )
    return binders


def bind(
    fn: Callable[..., Any], container: containers.Container, where: str, batch: bool | None = None
) -> Handler:
    """Build the ``Message`` handler calling ``fn`` with payload, envelope, headers and
    injections; it returns what ``fn`` returned (the items of a generator, as a
    :class:`Yielded`).

    Raises ``ConfigurationError`` at startup when ``fn`` cannot be bound (no parameters,
    unknown injection). At run time a payload or header that does not fit the annotation
    (or a missing header) raises ``DecodeError``, which dead-letters the message as
    ``undecodable``. A batch listener (``batch``, or a ``list[...]`` payload annotation) is
    bound by ``batch_binding``.
    """
    from redis_streaming_starter import batch_binding  # it builds on this module's converters

    if batch_binding.wants_batch(fn, batch, where):
        return batch_binding.bind_batch(fn, container, where)
    binders = _binders(fn, container, where)
    call = _caller(fn)

    async def handler(message: Message) -> Any:
        kwargs: dict[str, Any] = {}
        for name, convert, provider in binders:
            if convert is not None:
                kwargs[name] = convert(message)
            elif provider is not None:
                value = provider()
                kwargs[name] = await value if inspect.isawaitable(value) else value
        return await call(kwargs)

    handler.__name__ = getattr(fn, "__name__", "listener")
    handler.__qualname__ = getattr(fn, "__qualname__", handler.__name__)
    handler.__wrapped__ = fn  # type: ignore[attr-defined]  # the listener, for its annotations
    return handler


def injected_provider(marker: Any, container: containers.Container, where: str) -> Any:
    """The provider a ``Provide[...]`` default names (``@job`` functions bind them too)."""
    return _injected(marker, container, where)


def _caller(fn: Callable[..., Any]) -> Callable[[dict[str, Any]], Awaitable[Any]]:
    """Calls ``fn``: awaited (an async generator run to its end), or in a worker thread."""
    if inspect.isasyncgenfunction(fn):

        async def items(kwargs: dict[str, Any]) -> Any:
            return Yielded([item async for item in fn(**kwargs)])

        return items
    if inspect.isgeneratorfunction(fn):

        async def thread_items(kwargs: dict[str, Any]) -> Any:
            return Yielded(await asyncio.to_thread(lambda: list(fn(**kwargs))))

        return thread_items
    if inspect.iscoroutinefunction(fn):

        async def awaited(kwargs: dict[str, Any]) -> Any:
            return await fn(**kwargs)

        return awaited

    async def threaded(kwargs: dict[str, Any]) -> Any:
        return await asyncio.to_thread(fn, **kwargs)

    return threaded
