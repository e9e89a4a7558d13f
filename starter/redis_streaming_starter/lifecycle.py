"""The application's startup and shutdown hooks (``@app.on_startup``, ``@app.on_shutdown``).

Every function registered on an application (hooks, ``@app.runner``, info contributors) is
called with one argument, the application's container; hooks may be plain or ``async``
functions. The application decides when they run (docs/lifecycle.md); this module runs them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from redis_streaming import ConfigurationError, RedisStreamingError

__all__ = ["Hooks", "StartupError", "callable_name", "check_takes_container"]

log = logging.getLogger("redis_streaming_starter")

Hook = Callable[[Any], Any]


class StartupError(RedisStreamingError):
    """A startup hook (``@app.on_startup``) raised: the application did not start, and no
    listener consumed anything. ``hook`` is the hook's dotted name; the hook's exception is
    the ``__cause__``. ``redis-streaming run`` prints the message as its one line and exits 2.
    """

    def __init__(self, hook: str, error: BaseException) -> None:
        text = " ".join(str(error).split())  # one line, whatever the error's text
        super().__init__(
            f"startup hook {hook} failed: {type(error).__name__}" + (f": {text}" if text else "")
        )
        self.hook = hook


def callable_name(fn: Any) -> str:
    """``myapp.main.warm`` for a function, else its ``repr``."""
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    return f"{module}.{name}" if module and name else repr(fn)


def check_takes_container(fn: Any, what: str) -> None:
    """Raise ``ConfigurationError`` unless ``fn`` can be called with one argument (the
    container), so that a wrong signature fails where it is registered, not at startup."""
    if not callable(fn):
        raise ConfigurationError(f"{what}: {fn!r} is not callable; decorate a function")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have none: let the call tell
        return
    try:
        signature.bind(None)
    except TypeError:
        name = getattr(fn, "__name__", "fn")
        shown = signature.replace(return_annotation=inspect.Signature.empty)
        raise ConfigurationError(
            f"{what}: {callable_name(fn)}{shown} must take one argument, the application's "
            f"container: def {name}(container): ... (use it or ignore it)"
        ) from None


class Hooks:
    """Startup hooks run in registration order, shutdown hooks in reverse order; the shutdown
    hooks run once after all startup hooks have completed, and not otherwise."""

    def __init__(self) -> None:
        self.startup: list[Hook] = []
        self.shutdown: list[Hook] = []
        self._started = False

    def add(self, kind: str, fn: Hook) -> None:
        """Register ``fn`` as a ``startup`` or ``shutdown`` hook."""
        check_takes_container(fn, f"@app.on_{kind}")
        (self.startup if kind == "startup" else self.shutdown).append(fn)

    async def run_startup(self, container: Any) -> None:
        """Each startup hook in turn; the first that raises stops the others and raises
        ``StartupError`` (cancellation and other ``BaseException`` s pass through as they are)."""
        for fn in self.startup:
            name = callable_name(fn)
            log.debug("startup hook %s", name)
            try:
                await _call(fn, container)
            except Exception as exc:
                raise StartupError(name, exc) from exc
        self._started = True

    async def run_shutdown(self, container: Any) -> None:
        """The shutdown hooks, last registered first, when the startup hooks all ran; an
        exception is logged and the next hook runs."""
        if not self._started:
            return
        self._started = False
        for fn in reversed(self.shutdown):
            name = callable_name(fn)
            log.debug("shutdown hook %s", name)
            try:
                await _call(fn, container)
            except Exception:
                log.exception("shutdown hook %s failed; running the next one", name)


async def _call(fn: Hook, container: Any) -> None:
    result = fn(container)
    if inspect.isawaitable(result):
        await result
