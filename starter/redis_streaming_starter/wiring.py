"""The listeners an application runs, found and checked before anything starts.

Every wiring mistake is a ``ConfigurationError`` here, before Redis is connected and before any
listener runs: a package that cannot be imported, a class with ``@listener`` methods that the
container does not provide, a listener without a payload parameter or with a parameter that
cannot be bound (``Provide`` of an unknown provider), two listeners with one id, and two
listeners of one topic in one group.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dependency_injector import containers, providers

from redis_streaming import ConfigurationError
from redis_streaming_starter.binding import Handler, bind
from redis_streaming_starter.listener import (
    ListenerSpec,
    default_id,
    find_function_listeners,
    find_provided_listeners,
    provided_classes,
)

__all__ = ["PlannedListener", "plan_listeners"]


@dataclass(frozen=True)
class PlannedListener:
    """One listener to subscribe: its spec, id, group and where it is defined.

    ``handler`` is bound already for a function; for a method of a provided class it is None
    and ``provider``/``method`` say which instance to build and bind at start.
    """

    spec: ListenerSpec
    id: str
    group: str
    where: str
    handler: Handler | None = None
    provider: providers.Provider[Any] | None = None
    method: str = ""


class _NotBuilt:
    """Stands in for a provided instance while its methods' parameters are checked."""


def _method_of(cls: type, name: str) -> Callable[..., Any]:
    """``cls.name`` as it would be bound to an instance, without building one."""
    if isinstance(inspect.getattr_static(cls, name), staticmethod):
        return getattr(cls, name)  # type: ignore[no-any-return]
    return types.MethodType(getattr(cls, name), _NotBuilt())


def plan_listeners(
    packages: list[str], container: containers.Container, default_group: str
) -> list[PlannedListener]:
    """Every listener of ``packages`` and of the container's providers, checked.

    Raises ``ConfigurationError`` naming the listener (both of them for a clash) and the fix.
    """
    planned: list[PlannedListener] = []
    for fn, spec in find_function_listeners(packages, provided_classes(container)):
        where = f"{fn.__module__}.{fn.__qualname__}"
        handler = bind(fn, container, f"listener {where}", spec.batch)
        group = spec.group or default_group
        planned.append(
            PlannedListener(spec, spec.id or default_id(fn, spec), group, where, handler)
        )
    for provider, method, spec in find_provided_listeners(container):
        cls: type = provider.provides  # type: ignore[attr-defined]
        fn = _method_of(cls, method)
        where = f"{cls.__module__}.{cls.__qualname__}.{method}"
        bind(fn, container, f"listener {where}", spec.batch)  # checked now, bound at start
        group = spec.group or default_group
        lid = spec.id or default_id(fn, spec)
        planned.append(PlannedListener(spec, lid, group, where, provider=provider, method=method))
    by_id: dict[str, str] = {}
    by_topic: dict[tuple[str, str], str] = {}
    for p in planned:
        if p.id in by_id:
            raise ConfigurationError(
                f"two listeners have the id {p.id!r}: {by_id[p.id]} and {p.where}; give one of "
                "them another id with @listener(..., id='...')"
            )
        by_id[p.id] = p.where
        key = (p.spec.topic, p.group)
        if key in by_topic:
            raise ConfigurationError(
                f"two listeners subscribe to topic {p.spec.topic!r} in group {p.group!r}: "
                f"{by_topic[key]} and {p.where}; a group reads a topic through one listener per "
                "application, so merge them or give one another group with "
                "@listener(..., group='...')"
            )
        by_topic[key] = p.where
    return planned
