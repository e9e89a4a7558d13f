"""The application: settings and container in, running listeners and actuator out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from dependency_injector import containers, providers
from fastapi import FastAPI

from redis_streaming import ConfigurationError, Consumer
from redis_streaming.mq.aio import cancel_and_wait
from redis_streaming_starter.actuator import build_router
from redis_streaming_starter.actuator.health import (
    HealthRegistry,
    mq_health,
    redis_health,
    registry_health,
)
from redis_streaming_starter.actuator.security import exposure_warning
from redis_streaming_starter.binding import bind
from redis_streaming_starter.container import Container, resolve
from redis_streaming_starter.listener import (
    default_id,
    find_function_listeners,
    find_provided_listeners,
    provided_classes,
)
from redis_streaming_starter.settings import Settings, load_settings

__all__ = ["RedisStreamingApplication"]

R = TypeVar("R", bound=Callable[[Any], Awaitable[None]])

log = logging.getLogger("redis_streaming_starter")


class RedisStreamingApplication:
    """Builds settings and container, discovers listeners and owns the lifecycle.

    ``settings`` defaults to :func:`load_settings` (environment and ``application.yaml``);
    ``container`` to :class:`Container` (a subclass or an instance may be given);
    ``listener_packages`` adds to ``mq.listener_packages``. Start order: Redis, listeners
    (consumer), delayed mover, housekeeper, gauges, registry sweeper and health checker, and
    last the registration of this instance (``registry.enabled``); stop deregisters first,
    then drains the listeners gracefully within ``mq.shutdown_timeout_s`` and stops the rest.
    ``asgi`` is a FastAPI app with the actuator and this lifecycle in its lifespan; ``run()``
    serves it with uvicorn (SIGTERM/SIGINT stop it gracefully). To add it to your own FastAPI
    app, pass ``lifespan=app.lifespan`` and include ``app.router``.
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        container: containers.Container | type[containers.Container] | None = None,
        listener_packages: list[str] | None = None,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        if container is None:
            container = Container()
        elif isinstance(container, type):
            container = container()
        container.settings.override(providers.Object(self.settings))
        self.container: Any = container
        self.listener_packages = [*self.settings.mq.listener_packages, *(listener_packages or [])]
        self.health = HealthRegistry()
        self.ready = False
        self.failed = False
        self.running = False
        self.redis: Any = None
        self.consumer: Consumer | None = None
        self.gauges: Any = None
        self.registration: Any = None
        self._services: list[Any] = []
        self._runners: list[Callable[[Any], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._asgi: FastAPI | None = None
        self._management_asgi: FastAPI | None = None
        self.health.register("redis", redis_health(lambda: self.redis))
        self.health.register("mq", mq_health(lambda: self.consumer, lambda: self.running))
        if self.settings.registry.enabled:
            self.health.register("registry", registry_health(lambda: self.registration))

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, subscribe every listener, start consumer and background services."""
        if self.running:
            return
        self._configure_logging()
        try:
            self.redis = await resolve(self.container.redis)
            self.consumer = await resolve(self.container.consumer)
            await self._subscribe_listeners(self.consumer)
            await self.consumer.start()
            names = ["delayed_mover", "housekeeper"]
            if self.settings.metrics.enabled:
                names.append("topic_gauges")
            registry = self.settings.registry
            if registry.enabled and registry.sweeper:
                names.append("registry_sweeper")
            if registry.enabled and registry.health_checks:
                names.append("health_checker")
            for name in names:
                service = await resolve(getattr(self.container, name))
                await service.start()
                self._services.append(service)
                if name == "topic_gauges":
                    self.gauges = service
            if registry.enabled:  # last: others find this instance once it is ready
                self.registration = await resolve(self.container.registration)
                await self.registration.start()
        except BaseException:
            self.failed = True
            await self._shutdown(0)
            raise
        self.running = True
        self.ready = True
        for runner in self._runners:
            self._tasks.append(asyncio.create_task(self._run_runner(runner)))
        subs = self.consumer.subscriptions
        log.info(
            "%s started: %d listener(s) %s", self.settings.app.name, len(subs),
            ", ".join(f"{s.id} ({s.topic}/{s.group})" for s in subs),
        )  # fmt: skip

    async def stop(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - the contract
        """Graceful stop: readiness DOWN, listeners finish in-flight work (up to ``timeout``,
        default ``mq.shutdown_timeout_s``), leases released, services stopped, Redis closed."""
        self.ready = False
        await self._shutdown(self.settings.mq.shutdown_timeout_s if timeout is None else timeout)
        self.running = False
        log.info("%s stopped", self.settings.app.name)

    async def refresh_gauges(self) -> None:
        """Re-read the Redis-backed gauges (lag, pending, lengths) when older than
        ``metrics.gauge_max_age_s``; bounded by ``metrics.gauge_timeout_s``, never raises."""
        if self.gauges is not None:
            await self.gauges.refresh(max_age_s=self.settings.metrics.gauge_max_age_s)

    def runner(self, fn: R) -> R:
        """Register ``async def fn(container)`` to run once the application has started (like
        Spring's ApplicationRunner); it is cancelled when the application stops."""
        self._runners.append(fn)
        return fn

    async def _run_runner(self, fn: Callable[[Any], Awaitable[None]]) -> None:
        try:
            await fn(self.container)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("runner %s failed", getattr(fn, "__qualname__", fn))

    async def _shutdown(self, timeout_s: float) -> None:
        if self.registration is not None:  # first: stop being discovered, then drain
            await self.registration.stop()
            self.registration = None
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks.clear()
        if self.consumer is not None:
            await self.consumer.stop(timeout=timeout_s)
        for service in reversed(self._services):
            await service.stop()
        self._services.clear()
        self.gauges = None
        result = self.container.shutdown_resources()
        if result is not None:
            await result
        self.redis = None

    async def _subscribe_listeners(self, consumer: Consumer) -> None:
        ids: dict[str, str] = {}
        default_group = self.settings.app.name
        bound = []
        classes = provided_classes(self.container)
        for fn, spec in find_function_listeners(self.listener_packages, classes):
            where = f"listener {fn.__module__}.{fn.__qualname__}"
            bound.append((bind(fn, self.container, where), spec, default_id(fn, spec), where))
        for provider, method, spec in find_provided_listeners(self.container):
            instance = await resolve(provider)
            fn = getattr(instance, method)
            where = f"listener {type(instance).__qualname__}.{method}"
            bound.append((bind(fn, self.container, where), spec, default_id(fn, spec), where))
        for handler, spec, default, where in bound:
            lid = spec.id or default
            if lid in ids:
                raise ConfigurationError(
                    f"two listeners have the id {lid!r}: {ids[lid]} and {where}; give one of "
                    "them another id with @listener(..., id='...')"
                )
            ids[lid] = where
            consumer.subscribe(
                spec.topic,
                handler,
                group=spec.group or default_group,
                retry=spec.retry,
                start=spec.start,
                batch_size=spec.batch_size,
                id=lid,
            )

    def _configure_logging(self) -> None:
        cfg = self.settings.logging
        root = logging.getLogger()
        if not root.handlers:
            logging.basicConfig(format=cfg.format)
        root.setLevel(cfg.level)

    # -- web ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """Start on entry, stop gracefully on exit: pass as ``FastAPI(lifespan=...)``."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    @property
    def router(self) -> Any:
        """The actuator endpoints as a FastAPI ``APIRouter``."""
        return build_router(self)

    @property
    def asgi(self) -> FastAPI:
        """A FastAPI app with this application's lifecycle, serving the actuator too unless
        ``actuator.port`` puts it on its own port (then see ``management_asgi``)."""
        if self._asgi is None:
            app = FastAPI(
                title=self.settings.app.name,
                version=self.settings.app.version,
                lifespan=self.lifespan,
            )
            if self.settings.actuator.enabled and self.settings.actuator.port is None:
                app.include_router(self.router)
            self._asgi = app
        return self._asgi

    @property
    def management_asgi(self) -> FastAPI:
        """The actuator alone, without the lifecycle: what ``run()`` serves on
        ``actuator.port`` when it is set."""
        if self._management_asgi is None:
            app = FastAPI(
                title=f"{self.settings.app.name} actuator", version=self.settings.app.version
            )
            if self.settings.actuator.enabled:
                app.include_router(self.router)
            self._management_asgi = app
        return self._management_asgi

    def run(self) -> None:
        """Serve ``asgi`` with uvicorn on ``app.host``:``app.port`` (and the actuator on
        ``actuator.port`` when set) until SIGTERM/SIGINT, then stop gracefully and exit 0."""
        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                super().handle_exit(sig, frame)
                # uvicorn re-raises the signal after its shutdown, so the process would die of
                # SIGTERM; the stop *was* graceful, so end with exit code 0 instead.
                captured = getattr(self, "_captured_signals", None)
                if isinstance(captured, list):
                    captured.clear()

        class ManagementServer(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # the main server owns the signals and stops this one after itself

        self._configure_logging()
        if warning := exposure_warning(self.settings):
            log.warning(warning)
        level = self.settings.logging.level.lower()
        config = uvicorn.Config(
            self.asgi,
            host=self.settings.app.host,
            port=self.settings.app.port,
            log_level=level,
            timeout_graceful_shutdown=int(self.settings.mq.shutdown_timeout_s) + 1,
            lifespan="on",
        )
        main = Server(config)
        port = self.settings.actuator.port
        if port is None or not self.settings.actuator.enabled:
            main.run()
            return
        management = ManagementServer(
            uvicorn.Config(
                self.management_asgi,
                host=self.settings.app.host,
                port=port,
                log_level=level,
                lifespan="off",
            )
        )

        try:  # bind first, so a taken port is a clear error before anything starts
            family = socket.AF_INET6 if ":" in self.settings.app.host else socket.AF_INET
            sock = socket.create_server((self.settings.app.host, port), family=family)
        except OSError as exc:
            raise ConfigurationError(
                f"the actuator cannot listen on {self.settings.app.host}:{port} ({exc}): choose "
                "a free REDIS_STREAMING_ACTUATOR__PORT, or unset it to serve it on app.port"
            ) from None

        async def serve_both() -> None:
            task = asyncio.create_task(management.serve(sockets=[sock]))
            try:
                await main.serve()
            finally:
                management.should_exit = True
                await task

        asyncio.run(serve_both())
