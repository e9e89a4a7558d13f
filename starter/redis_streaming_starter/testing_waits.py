"""Waiting in tests: polling a condition with a deadline, finding a listener's subscription,
and the application under test ready to read."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from redis_streaming import ConfigurationError, Subscription
from redis_streaming_starter.application import RedisStreamingApplication
from redis_streaming_starter.container import resolve
from redis_streaming_starter.listener import default_id, specs_of

__all__ = ["READY_TIMEOUT_S", "subscription_of", "until", "wait_ready"]

READY_TIMEOUT_S = 10.0
_POLL_S = 0.01


async def until(
    condition: Callable[[], Any | Awaitable[Any]],
    timeout: float = 5.0,  # noqa: ASYNC109 - a test helper's deadline, as asyncio's
    what: str | None = None,
) -> Any:
    """Call ``condition`` (sync or async) every 10 ms until it returns a true value; return
    it. An ``AssertionError`` it raises counts as "not yet". After ``timeout`` seconds, raise
    ``AssertionError`` naming ``what`` (or the function), with the last value or the last
    assertion's message."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        failed: AssertionError | None = None
        try:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
        except AssertionError as exc:
            value, failed = None, exc
        if value:
            return value
        if loop.time() >= deadline:
            name = what or getattr(condition, "__qualname__", repr(condition))
            last = f"the last check failed: {failed}" if failed else f"last value {value!r}"
            raise AssertionError(f"{name} still false after {timeout} s; {last}") from failed
        await asyncio.sleep(_POLL_S)


def subscription_of(app: RedisStreamingApplication, listener: Any) -> Subscription:
    """The subscription of ``listener``: its id, or its ``@listener`` function or method."""
    assert app.consumer is not None
    by_id = {s.id: s for s in app.consumer.subscriptions}
    if isinstance(listener, str):
        ids = [listener]
    else:
        fn = getattr(listener, "__func__", listener)
        specs = specs_of(fn)
        if not specs:
            raise ConfigurationError(f"{fn!r} is not a @listener function; pass its id")
        ids = [spec.id or default_id(fn, spec) for spec in specs]
    found = [by_id[i] for i in ids if i in by_id]
    if len(found) == 1:
        return found[0]
    if found:
        raise ConfigurationError(
            f"{listener!r} is several listeners ({', '.join(ids)}); pass the id of one"
        )
    known = ", ".join(sorted(by_id)) or "none"
    raise ConfigurationError(
        f"the application has no listener {' or '.join(map(repr, ids))}; its listeners: "
        f"{known} (listener_packages and the container's classes are scanned)"
    )


async def wait_ready(app: RedisStreamingApplication) -> None:
    """Until every listener's group exists on every partition of its topic: a message sent
    from then on is read, also by a ``start="latest"`` listener."""
    assert app.consumer is not None
    subs = app.consumer.subscriptions
    admin = await resolve(app.container.admin)

    async def reading() -> bool:
        for sub in subs:
            if not sub.owned:
                return False
            info = await admin.describe_topic(sub.topic)
            if not all(any(g.name == sub.group for g in p.groups) for p in info.partitions):
                return False
        return True

    try:
        await until(reading, READY_TIMEOUT_S)
    except AssertionError:
        states = "; ".join(
            f"{s.id} ({s.topic}/{s.group}): owns {s.owned_partitions}, last error {s.last_error}"
            for s in subs
        )
        raise AssertionError(
            f"the application's listeners were not all reading after {READY_TIMEOUT_S} s: {states}"
        ) from None
