"""Actuator endpoint ``/beans``: the providers of the application's dependency-injector container.

Each provider is a "bean": its scope is the provider kind (singleton, resource, factory,
callable, coroutine, object, ...), its type the class it provides (for a factory function, the
class its return annotation names, else the function), its dependencies the container's other
providers it is built from. An overridden provider (``container.x.override(...)``) is described
by its override, which is what the container provides.
"""

from __future__ import annotations

import collections.abc as cabc
import typing
from typing import Any

from dependency_injector import providers
from fastapi import APIRouter
from pydantic import BaseModel, Field

from redis_streaming_starter.actuator.context import ActuatorContext

__all__ = ["Beans", "describe_container", "routes"]


class Bean(BaseModel):
    aliases: list[str] = Field(description="Other names of the same provider.")
    scope: str = Field(description="Provider kind: singleton, resource, factory, callable, ...")
    type: str = Field(description="Fully qualified name of what is provided.")
    resource: str | None = Field(description="The container class that declares the provider.")
    dependencies: list[str] = Field(description="Names of the providers it is built from.")


class BeansContext(BaseModel):
    beans: dict[str, Bean]
    parentId: str | None = None


class Beans(BaseModel):
    """``GET /beans``, keyed by the application name."""

    contexts: dict[str, BeansContext]


# Most specific first: Coroutine is a Callable, ThreadSafeSingleton a BaseSingleton, ...
_SCOPES: tuple[tuple[type[Any], str], ...] = (
    (providers.BaseSingleton, "singleton"),
    (providers.BaseResource, "resource"),
    (providers.Factory, "factory"),
    (providers.Coroutine, "coroutine"),
    (providers.Callable, "callable"),
    (providers.Object, "object"),
    (providers.Configuration, "configuration"),
    (providers.Dependency, "dependency"),
)
_WRAPPERS = {
    cabc.Iterator, cabc.AsyncIterator, cabc.Generator, cabc.AsyncGenerator, cabc.Awaitable,
}  # fmt: skip


def routes(ctx: ActuatorContext) -> APIRouter:
    """``/beans`` when ``beans`` is exposed."""
    router = ctx.router()
    if not ctx.is_exposed("beans"):
        return router

    @router.get("/beans", summary="The container's providers and their dependencies")
    async def beans() -> Beans:
        described = describe_container(ctx.app.container)
        return Beans(contexts={ctx.app.settings.app.name: BeansContext(beans=described)})

    return router


def describe_container(container: Any) -> dict[str, Bean]:
    """One :class:`Bean` per provider of ``container`` (aliases folded into the first name)."""
    names: dict[int, str] = {}
    aliases: dict[str, list[str]] = {}
    for name, provider in container.providers.items():
        first = names.setdefault(id(provider), name)
        aliases.setdefault(first, [])
        if first != name:
            aliases[first].append(name)
    parent = getattr(container, "declarative_parent", None)
    out = {}
    for name, provider in container.providers.items():
        if names[id(provider)] != name:
            continue
        effective = provider.last_overriding or provider
        out[name] = Bean(
            aliases=aliases[name],
            scope=_scope(effective),
            type=_type(effective),
            resource=_declared_in(parent, name),
            dependencies=[n for n in _dependencies(effective, names) if n != name],
        )
    return out


def _scope(provider: Any) -> str:
    for cls, scope in _SCOPES:
        if isinstance(provider, cls):
            return scope
    return type(provider).__name__.lower()


def _fqcn(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _type(provider: Any) -> str:
    if isinstance(provider, providers.Object):
        return _fqcn(type(provider.provides))
    if isinstance(provider, providers.Dependency):
        return _fqcn(provider.instance_of)
    provides = getattr(provider, "provides", None)
    if isinstance(provides, type):
        return _fqcn(provides)
    if callable(provides):
        returned = _returned_class(provides)
        return _fqcn(returned if returned is not None else provides)
    return _fqcn(type(provider))


def _returned_class(fn: Any) -> type[Any] | None:
    """The class a factory function's return annotation names (unwrapping the iterator of a
    resource generator and the awaitable of a coroutine); None when it is not one class."""
    try:
        returned = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable annotations: fall back to the function itself
        return None
    if typing.get_origin(returned) in _WRAPPERS:
        returned = typing.get_args(returned)[0]
    if typing.get_origin(returned) is cabc.Coroutine:
        returned = typing.get_args(returned)[-1]
    return returned if isinstance(returned, type) and returned is not Any else None


def _dependencies(provider: Any, names: dict[int, str]) -> list[str]:
    """Named providers ``provider`` is built from, also through anonymous inline providers."""
    found: dict[str, None] = {}
    seen: set[int] = set()
    stack = list(provider.related)
    while stack:
        related = stack.pop(0)
        if id(related) in seen:
            continue
        seen.add(id(related))
        if id(related) in names:
            found[names[id(related)]] = None
        elif isinstance(related, providers.Provider):
            stack.extend(related.related)
    return list(found)


def _declared_in(parent: Any, name: str) -> str | None:
    for cls in getattr(parent, "__mro__", ()):
        if name in getattr(cls, "cls_providers", {}):
            return _fqcn(cls)
    return None
