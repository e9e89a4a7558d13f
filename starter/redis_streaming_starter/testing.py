"""Testing an application: build it with isolated settings on a throwaway real server, send,
wait for its listeners, look at what it published, and clean up.

``async with app_test(app) as t:`` (or the pytest plugin's ``rs_app`` fixture, see
``redis_streaming_starter.testing_plugin``) starts a fresh application and gives ``t``:
``t.send(...)``, ``await t.handled(listener)``, ``await t.until(condition)``,
``t.published(topic)``, ``await t.dead_letters(topic)``, ``t.override(provider, value)`` and
``t.http`` (an httpx client on its FastAPI app). docs/testing.md has the guide.

This is part of the starter, not of ``redis_streaming.testing`` (which keeps the server
fixtures): it builds a starter application, and the framework never imports the starter.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Literal, Protocol

from dependency_injector import providers

from redis_streaming import ConfigurationError, DeadLetterEntry, Producer, SendResult
from redis_streaming.embedded import RedisServer
from redis_streaming.integration import validate_name
from redis_streaming_starter.application import RedisStreamingApplication
from redis_streaming_starter.autoconfigure.redis import connect
from redis_streaming_starter.container import resolve
from redis_streaming_starter.settings import Settings
from redis_streaming_starter.testing_build import FAST_MQ, build, provider_of, settings_values
from redis_streaming_starter.testing_publications import Publication, Publications, record_into
from redis_streaming_starter.testing_waits import subscription_of, until, wait_ready

__all__ = ["FAST_MQ", "AppTest", "AppTestFactory", "Publication", "app_test"]

log = logging.getLogger("redis_streaming_starter.testing")

Outcome = Literal["processed", "dead_lettered"]
_NOT_STARTED = "the application is built on entry: use `async with app_test(...) as t`"


class AppTest:
    """One application under test: built and started on entry, stopped and cleaned up on exit.

    ``app`` is a :class:`RedisStreamingApplication` or a factory ``f(settings)`` returning one
    (or a FastAPI app that keeps it in ``state.streaming`` and runs ``lifespan=app.lifespan``).
    An application is rebuilt: a new one of its container class, listener packages, runners and
    ``Settings`` class; what it added after it was built (routes) is not copied, so give the
    factory for those. A factory is called with the settings; their class is its parameter's
    annotation (a ``Settings`` subclass), else ``settings_cls``, else ``Settings``.

    Settings are ``load_settings(isolated=True, ...)``: nothing from the environment, ``.env`` or
    ``application.yaml`` (``isolated=False`` reads them), only ``settings`` (sections as dicts,
    ``{"mq": {"batch_size": 10}, "shop": {...}}``), over :data:`FAST_MQ`, over the defaults.
    ``redis.url`` is ``url``, else a private server started here (and stopped on exit);
    ``mq.namespace`` is ``namespace``, else a fresh one whose keys are deleted on exit (a given
    namespace is yours and is left as it is). ``overrides`` maps providers of the container
    (``Container.producer`` or ``"producer"``) to values or providers, applied before the start.
    ``runners=False`` leaves the application's runners out.

    The entry returns once every listener's group exists on every partition of its topic, so a
    message sent then is never missed (``start="latest"`` included).
    """

    def __init__(
        self,
        app: Any,
        *,
        settings: Mapping[str, Any] | None = None,
        url: str | None = None,
        namespace: str | None = None,
        overrides: Mapping[Any, Any] | None = None,
        settings_cls: type[Settings] | None = None,
        isolated: bool = True,
        runners: bool = True,
    ) -> None:
        if not isinstance(app, RedisStreamingApplication) and not callable(app):
            raise ConfigurationError(
                f"app_test needs a RedisStreamingApplication or a factory f(settings) that "
                f"returns one, not {app!r}"
            )
        self._given = settings_values(settings)
        if namespace is not None:
            validate_name(namespace, "namespace")
        self._source = app
        self._settings_cls, self._isolated, self._runners = settings_cls, isolated, runners
        self._overrides: list[tuple[Any, Any]] = list((overrides or {}).items())
        self._publications = Publications()
        self._seen: dict[tuple[str, str], int] = {}
        self._stack = AsyncExitStack()
        self._app: RedisStreamingApplication | None = None
        self._asgi: Any = None
        self._http: Any = None
        self._producer: Producer | None = None
        self._own_namespace = namespace is None
        self.namespace = namespace or f"t{uuid.uuid4().hex[:12]}"
        """The application's ``mq.namespace``."""
        self.url = url or ""
        """The Redis URL the application uses (set on entry without ``url``)."""

    # -- what the test reads -----------------------------------------------------------------

    @property
    def app(self) -> RedisStreamingApplication:
        """The application under test (built on entry)."""
        if self._app is None:
            raise RuntimeError(_NOT_STARTED)
        return self._app

    @property
    def settings(self) -> Any:
        """The application's settings (an instance of its ``Settings`` class)."""
        return self.app.settings

    @property
    def container(self) -> Any:
        """The application's container."""
        return self.app.container

    @property
    def redis(self) -> Any:
        """The application's Redis client (replies as bytes)."""
        return self.app.redis

    @property
    def http(self) -> Any:
        """An ``httpx.AsyncClient`` on the application's FastAPI app (actuator and your own
        routes) in this process, without a server; closed on exit. Needs ``httpx``."""
        if self._http is None:
            import httpx  # only here: the rest works without it

            asgi = self._asgi if self._asgi is not None else self.app.asgi
            transport = httpx.ASGITransport(app=asgi)
            self._http = httpx.AsyncClient(transport=transport, base_url="http://test")
            self._stack.push_async_callback(self._http.aclose)
        return self._http

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> AppTest:
        try:
            await self._start()
        except BaseException:
            await self._close(failing=True)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close(failing=exc is not None)

    async def _start(self) -> None:
        if self._app is not None:
            raise RuntimeError("an AppTest runs once; make another for the next test")
        if not self.url:
            server = await asyncio.to_thread(RedisServer().start)
            self._stack.push_async_callback(asyncio.to_thread, server.close)
            self.url = server.url
        built = build(
            self._source,
            self._given,
            url=self.url,
            namespace=self.namespace,
            settings_cls=self._settings_cls,
            isolated=self._isolated,
            runners=self._runners,
        )
        self._app, self._asgi = app, asgi = built.app, built.asgi
        if self._own_namespace:
            self._stack.push_async_callback(self._delete_keys)
        producer = app.container.producer
        provides = getattr(producer, "provides", None)
        if isinstance(provides, type) and issubclass(provides, Producer):
            producer.set_provides(record_into(provides, self._publications))
        for target, value in self._overrides:
            self.override(target, value)
        if asgi is not None:
            await self._stack.enter_async_context(asgi.router.lifespan_context(asgi))
            if not app.running:
                raise ConfigurationError(
                    "the factory's FastAPI app did not start the RedisStreamingApplication in its "
                    "lifespan; build it with FastAPI(lifespan=app.lifespan)"
                )
        else:
            self._stack.push_async_callback(_stop, app)
            await app.start()
        self._producer = Producer(app.redis, app.settings.mq)
        await wait_ready(app)

    async def _close(self, *, failing: bool) -> None:
        """Stop the application, delete the namespace's keys, stop the server: each step runs
        even when one before it fails. A failure here is raised unless the test failed already
        (then it is logged, and the test's own error is what is reported)."""
        try:
            await self._stack.aclose()
        except Exception:
            if not failing:
                raise
            log.exception("cleaning up after a failed test failed too")

    async def _delete_keys(self) -> None:
        client = await connect(self.app.settings, self.url)
        try:
            batch: list[Any] = []
            async for key in client.scan_iter(match=f"{self.namespace}:*", count=1000):
                batch.append(key)
                if len(batch) == 500:
                    await client.delete(*batch)
                    batch.clear()
            if batch:
                await client.delete(*batch)
        finally:
            await client.aclose()

    # -- acting and waiting ------------------------------------------------------------------

    async def send(
        self,
        topic: str,
        payload: Any,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendResult:
        """Send a message to ``topic`` as another application would (not recorded in
        :meth:`published`, which is what the application sends)."""
        if self._producer is None:
            raise RuntimeError(_NOT_STARTED)
        return await self._producer.send(topic, payload, key=key, headers=headers)

    async def handled(
        self,
        listener: str | Callable[..., Any],
        n: int = 1,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a test helper's deadline, as asyncio's
        outcome: Outcome = "processed",
    ) -> None:
        """Wait until ``listener`` (its id, or the ``@listener`` function or method) has handled
        ``n`` more messages than the previous ``handled`` of it counted (the first counts from
        the start): with ``outcome="processed"`` its handler returned (the acknowledgement may
        still be queued), with ``"dead_lettered"`` the message is in the dead-letter stream.
        A retry is no outcome: the message comes back. Raises ``AssertionError`` after
        ``timeout`` seconds, with the listener's counts and last error."""
        if outcome not in ("processed", "dead_lettered"):
            raise ConfigurationError(
                f"handled(outcome={outcome!r}): use 'processed' or 'dead_lettered'"
            )
        if not isinstance(n, int) or n < 1:
            raise ConfigurationError(f"handled(n={n!r}): n counts messages, 1 or more")
        sub = subscription_of(self.app, listener)
        mark = (sub.id, outcome)
        target = self._seen.get(mark, 0) + n
        try:
            await until(lambda: getattr(sub, outcome) >= target, timeout)
        except AssertionError:
            done = getattr(sub, outcome) - self._seen.get(mark, 0)
            raise AssertionError(
                f"listener {sub.id!r} ({sub.topic}/{sub.group}) {outcome.replace('_', '-')} "
                f"{done} of {n} message(s) in {timeout} s; so far processed {sub.processed}, "
                f"retried {sub.retried}, dead-lettered {sub.dead_lettered}, last error: "
                f"{sub.last_error}"
            ) from None
        self._seen[mark] = target

    async def until(
        self,
        condition: Callable[[], Any | Awaitable[Any]],
        timeout: float = 5.0,  # noqa: ASYNC109 - a test helper's deadline, as asyncio's
        what: str | None = None,
    ) -> Any:
        """Call ``condition`` (sync or async) every 10 ms until it returns a true value, and
        return that value. An ``AssertionError`` it raises counts as "not yet". After
        ``timeout`` seconds, raises ``AssertionError`` naming ``what`` (or the function) with
        the last value, or the last assertion's message."""
        return await until(condition, timeout, what)

    # -- what the application did --------------------------------------------------------------

    def published(self, topic: str) -> list[Any]:
        """The payloads the application sent to ``topic`` through its producer, in order (the
        objects it passed: a model stays a model). The messages are in Redis too."""
        return [p.payload for p in self._publications.of(topic)]

    def publications(self, topic: str | None = None) -> list[Publication]:
        """What the application sent (to ``topic``, or anywhere) with keys, headers and where
        each went, in order."""
        return self._publications.of(topic)

    async def dead_letters(self, topic: str, group: str | None = None) -> list[DeadLetterEntry]:
        """The dead letters of ``topic`` (of ``group`` only, when given), oldest first, at
        most 1,000."""
        dead_letters = await resolve(self.app.container.dead_letters)
        entries: list[DeadLetterEntry] = await dead_letters.list(topic, group, count=1000)
        return entries[::-1]

    # -- dependencies --------------------------------------------------------------------------

    def override(self, provider: Any, value: Any) -> None:
        """Make the container's ``provider`` (``Container.payments``, ``ShopContainer.store``
        or its name) provide ``value`` (a provider is used as it is, anything else as
        ``providers.Object(value)``), the dependency-injector way. Before the start (or with
        ``overrides=``) it holds for everything; after it, for what is resolved from then on
        (``Provide[...]`` parameters of a listener are resolved per message, a ``Singleton``
        built already keeps what it got)."""
        if self._app is None:
            self._overrides.append((provider, value))
            return
        target = provider_of(self._app.container, provider)
        target.override(value if isinstance(value, providers.Provider) else providers.Object(value))


class AppTestFactory(Protocol):
    """The ``rs_app`` fixture: :class:`AppTest` on the test's server (``rs_url``)."""

    def __call__(
        self,
        app: Any,
        *,
        settings: Mapping[str, Any] | None = ...,
        url: str | None = ...,
        namespace: str | None = ...,
        overrides: Mapping[Any, Any] | None = ...,
        settings_cls: type[Settings] | None = ...,
        isolated: bool = ...,
        runners: bool = ...,
    ) -> AppTest: ...


def app_test(
    app: Any,
    *,
    settings: Mapping[str, Any] | None = None,
    url: str | None = None,
    namespace: str | None = None,
    overrides: Mapping[Any, Any] | None = None,
    settings_cls: type[Settings] | None = None,
    isolated: bool = True,
    runners: bool = True,
) -> AppTest:
    """``async with app_test(app) as t:`` - see :class:`AppTest`. Without ``url`` it starts a
    private server for this test (``redis-server``, or ``valkey-server`` of the ``testing``
    extra); the pytest fixture ``rs_app`` uses the session's server instead."""
    return AppTest(
        app,
        settings=settings,
        url=url,
        namespace=namespace,
        overrides=overrides,
        settings_cls=settings_cls,
        isolated=isolated,
        runners=runners,
    )


async def _stop(app: RedisStreamingApplication) -> None:
    if app.running:
        await app.stop()
