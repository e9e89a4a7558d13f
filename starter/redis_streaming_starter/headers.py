"""Typed headers for listeners: ``Header[int]``, ``Annotated[str, Header("x-tenant")]``,
``Headers``; and the binder that reads them from a message."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from redis_streaming import ConfigurationError, DecodeError, Message

__all__ = ["Header", "Headers", "header_binder"]

T = TypeVar("T")


class _HeaderSpec:
    """The marker ``Header[...]`` and ``Header("name")`` put into ``Annotated``."""

    def __init__(self, name: str | None = None) -> None:
        if name is not None and not (isinstance(name, str) and name):
            raise ConfigurationError(f"Header(name): the header's name, a str, not {name!r}")
        self.name = name

    def __repr__(self) -> str:
        return f"Header({self.name!r})" if self.name else "Header()"


class _AllHeaders:
    """The marker of ``Headers``."""

    def __repr__(self) -> str:
        return "Headers"


if TYPE_CHECKING:  # for a type checker ``Header[int]`` is an ``int``
    Header = Annotated[T, _HeaderSpec]
else:

    class Header(_HeaderSpec):
        """A listener parameter that receives one header of the message.

        ``tenant: Header[str]`` receives the header named like the parameter (``tenant``);
        ``tenant: Annotated[str, Header("x-tenant")]`` names it; the type converts the value
        (``Header[int]``, ``Header[datetime]``: pydantic's lax validation, the value being a
        string). A parameter with a default keeps it when the header is missing; without a
        default a missing header or a value that does not convert raises ``DecodeError``, and
        the message is dead-lettered as ``undecodable``.
        """

        def __class_getitem__(cls, item: Any) -> Any:
            return Annotated[item, cls()]


Headers = Annotated[dict[str, str], _AllHeaders()]
Headers.__doc__ = """A listener parameter annotated ``Headers`` receives all the message's
headers, a ``dict[str, str]`` (a copy)."""


def _spec(annotation: Any) -> _HeaderSpec | _AllHeaders | None:
    for meta in getattr(annotation, "__metadata__", ()):
        if isinstance(meta, _HeaderSpec | _AllHeaders):
            return meta
    return None


def header_binder(
    parameter: str, annotation: Any, default: Any, where: str
) -> Callable[[Message], Any] | None:
    """The converter of a ``Header``/``Headers`` parameter (its annotation with extras, its
    default or ``inspect.Parameter.empty``), or None when the parameter is not one."""
    spec = _spec(annotation)
    if spec is None:
        return None
    if isinstance(spec, _AllHeaders):
        return lambda m: dict(m.headers)
    name = spec.name or parameter
    target = typing.get_args(annotation)[0]
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(target)
    except Exception as exc:
        raise ConfigurationError(
            f"{where}: cannot bind header {name!r} to {_name(target)}: {exc}"
        ) from exc
    keep = default is not inspect.Parameter.empty

    def read(m: Message) -> Any:
        value = m.headers.get(name)
        if value is None:
            if keep:
                return default
            raise DecodeError(
                f"{where}: the message has no header {name!r}, which parameter {parameter!r} "
                "needs (give the parameter a default to make it optional)"
            )
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            problems = "; ".join(e["msg"] for e in exc.errors(include_input=False))
            raise DecodeError(
                f"{where}: header {name!r} is not a valid {_name(target)}: {problems}"
            ) from None

    return read


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)
