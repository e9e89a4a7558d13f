"""``@listener`` and the discovery of listeners in packages and container providers."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal, TypeVar

from dependency_injector import containers, providers

from redis_streaming import ConfigurationError, Message, RateLimit, RetryPolicy
from redis_streaming.integration import validate_name

__all__ = ["ListenerSpec", "find_function_listeners", "find_provided_listeners", "listener"]

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__redis_streaming_listeners__"


@dataclass(frozen=True)
class ListenerSpec:
    """What ``@listener`` recorded: where to subscribe and how."""

    topic: str
    group: str | None
    id: str | None
    retry: RetryPolicy | None
    start: Literal["earliest", "latest"]
    batch_size: int | None
    rate_limit: RateLimit | None = None
    batch: bool | None = None
    filter: Callable[[Message], bool] | None = None
    publish_to: str | None = None
    publish_key: Callable[[Any], str | None] | None = None


def listener(
    topic: str,
    *,
    group: str | None = None,
    id: str | None = None,
    retry: RetryPolicy | None = None,
    start: Literal["earliest", "latest"] = "earliest",
    batch_size: int | None = None,
    rate_limit: str | RateLimit | None = None,
    batch: bool | None = None,
    filter: Callable[[Message], bool] | None = None,
    publish_to: str | None = None,
    publish_key: Callable[[Any], str | None] | None = None,
) -> Callable[[F], F]:
    """Mark a function (or a method of a class the container provides) as a listener.

    The first parameter receives the payload decoded to its annotation (a pydantic model,
    ``dict``, ``list``, ``str``, ``bytes``, or :class:`~redis_streaming.Message`); a parameter
    annotated ``Message`` receives the envelope; parameters defaulting to
    ``dependency_injector.wiring.Provide[...]`` are injected from the container. ``group``
    defaults to ``app.name``; ``id`` (unique, used by the actuator) to ``<function>``. Returning
    acknowledges; raising retries per ``retry`` (default ``mq.retry``); a payload that fails
    validation is dead-lettered as ``undecodable``. The same function may carry several
    ``@listener`` decorators.

    ``rate_limit`` (``"100/s"``, ``"20/min"``, ``"5/100ms"``, ``"100/s, burst=10"``,
    ``"100/s, algorithm=sliding_window"`` or a :class:`~redis_streaming.RateLimit`): the most
    messages the listener's group handles per period, over all its instances together; over
    it, the listener waits (reading waits too), it never drops. A bad spec fails here, at
    decoration, saying what to write.

    ``batch``: a payload parameter annotated ``list[X]`` (``list[Order]``, ``list[dict]``,
    ``list[Message]``) makes a batch listener, called with up to ``batch_size`` messages of a
    partition at once (see docs/listeners.md, "Batch listeners"); ``batch=True`` asks for it
    explicitly, ``batch=False`` binds a ``list[X]`` annotation to one message's JSON array
    instead. ``filter``: a plain function of the :class:`~redis_streaming.Message` returning
    whether the listener handles it; skipped messages are acknowledged (docs/listeners.md,
    "Filters").

    ``publish_to``: the topic the listener's results go to: its return value, or each item an
    (async) generator listener yields; None publishes nothing. A result is keyed like the
    message it came from, or by ``publish_key(result)`` when given (None: no key), and carries
    ``x-origin-*`` headers naming that message; a :class:`~redis_streaming.ProducerRecord`
    result sets its own key and headers. The results of one call are written together before
    the message is acknowledged; a failed write raises in the handler, so the message is
    retried per ``retry``. A message sent with ``Producer.request`` is answered with the
    return value too. See docs/listeners.md, "Publishing results".
    """
    validate_name(topic, "topic")
    if publish_to is not None:
        validate_name(publish_to, "publish_to topic")
    if publish_key is not None and not callable(publish_key):
        raise ConfigurationError(
            f"@listener({topic!r}, publish_key=...) takes a function of the result returning "
            f"the key (or None), not {publish_key!r}"
        )
    if publish_key is not None and publish_to is None:
        raise ConfigurationError(
            f"@listener({topic!r}, publish_key=...) without publish_to: name the topic the "
            "results go to with publish_to='...'"
        )
    if group is not None:
        validate_name(group, "group")
    if start not in ("earliest", "latest"):
        raise ConfigurationError(f"@listener start must be 'earliest' or 'latest', not {start!r}")
    try:
        limit = None if rate_limit is None else RateLimit.parse(rate_limit)
    except ConfigurationError as exc:
        raise ConfigurationError(f"@listener({topic!r}, rate_limit=...): {exc}") from None
    if filter is not None and (not callable(filter) or inspect.iscoroutinefunction(filter)):
        raise ConfigurationError(
            f"@listener({topic!r}, filter=...) takes a plain (not async) function of the "
            f"Message returning a bool, not {filter!r}; e.g. filter=lambda m: "
            "m.headers.get('type') == 'order'"
        )
    spec = ListenerSpec(
        topic, group, id, retry, start, batch_size, limit, batch, filter,
        publish_to=publish_to, publish_key=publish_key,
    )  # fmt: skip

    def mark(fn: F) -> F:
        if not callable(fn):
            raise ConfigurationError(f"@listener decorates functions, not {fn!r}")
        specs = [*getattr(fn, _MARK, ()), spec]
        setattr(fn, _MARK, tuple(specs))
        return fn

    return mark


def specs_of(obj: Any) -> tuple[ListenerSpec, ...]:
    """The listener specs recorded on a function, if any."""
    return tuple(getattr(obj, _MARK, ()))


def default_id(fn: Any, spec: ListenerSpec) -> str:
    """A listener's id when ``@listener`` gives none: the function's ``__qualname__``; with
    several ``@listener`` on one function, ``<qualname>-<topic>`` (``-<group>`` added when one
    topic is listened to in several groups)."""
    qualname: str = fn.__qualname__
    specs = specs_of(fn)
    if len(specs) == 1:
        return qualname
    same_topic = [s for s in specs if s.topic == spec.topic]
    if len(same_topic) == 1 or spec.group is None:
        return f"{qualname}-{spec.topic}"
    return f"{qualname}-{spec.topic}-{spec.group}"


def _modules(package: str) -> Iterable[ModuleType]:
    try:
        root = importlib.import_module(package)
    except ImportError as exc:
        raise ConfigurationError(
            f"listener package {package!r} cannot be imported ({exc}); check "
            "mq.listener_packages (REDIS_STREAMING_MQ__LISTENER_PACKAGES) and that the package "
            "is on the Python path"
        ) from exc
    yield root
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{package}."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue  # a package's entry point runs the application; never import it here
        try:
            yield importlib.import_module(info.name)
        except Exception as exc:
            raise ConfigurationError(
                f"importing {info.name} (listener package {package!r}) failed: {exc!r}"
            ) from exc


def find_function_listeners(
    packages: Iterable[str], provided: set[type]
) -> list[tuple[Callable[..., Any], ListenerSpec]]:
    """Module-level listener functions defined in ``packages`` (and their subpackages).

    A class there with ``@listener`` methods that the container does not provide is an error:
    its methods would never run.
    """
    found: list[tuple[Callable[..., Any], ListenerSpec]] = []
    for package in packages:
        for module in _modules(package):
            for obj in list(vars(module).values()):
                if getattr(obj, "__module__", None) != module.__name__:
                    continue
                if inspect.isfunction(obj):
                    found += [(obj, spec) for spec in specs_of(obj)]
                elif inspect.isclass(obj) and obj not in provided and _marked_methods(obj):
                    raise ConfigurationError(
                        f"{obj.__module__}.{obj.__qualname__} has @listener methods but the "
                        "container provides no instance of it; add a provider for it to your "
                        "Container subclass (e.g. providers.Singleton(...))"
                    )
    return found


def _marked_methods(cls: type) -> list[tuple[str, ListenerSpec]]:
    return [
        (name, spec)
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        for spec in specs_of(fn)
    ]


def find_provided_listeners(
    container: containers.Container,
) -> list[tuple[providers.Provider[Any], str, ListenerSpec]]:
    """(provider, method name, spec) for every provided class with ``@listener`` methods."""
    found = []
    for provider in container.traverse(types=[providers.Singleton, providers.Factory]):
        cls = getattr(provider, "provides", None)
        if inspect.isclass(cls):
            found += [(provider, name, spec) for name, spec in _marked_methods(cls)]
    return found


def provided_classes(container: containers.Container) -> set[type]:
    """Classes the container's Singleton and Factory providers build."""
    out = set()
    for provider in container.traverse(types=[providers.Singleton, providers.Factory]):
        cls = getattr(provider, "provides", None)
        if inspect.isclass(cls):
            out.add(cls)
    return out


def package_modules(package: str) -> Iterable[ModuleType]:
    """``package`` and its submodules, imported (``@job`` discovery uses it too)."""
    return _modules(package)
