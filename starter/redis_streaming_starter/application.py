"""The application: settings and container in, running listeners and actuator out."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import uvicorn
from dependency_injector import containers, providers
from fastapi import FastAPI

from redis_streaming import ConfigurationError, Consumer, Producer
from redis_streaming.integration import cancel_and_wait
from redis_streaming_starter.actuator import build_router
from redis_streaming_starter.actuator.health import (
    HealthRegistry,
    mq_health,
    redis_health,
    registry_health,
    runtime_health,
)
from redis_streaming_starter.actuator.http_metrics import add_http_metrics
from redis_streaming_starter.actuator.info import InfoContributors
from redis_streaming_starter.actuator.security import exposure_warning
from redis_streaming_starter.batch_binding import is_batch
from redis_streaming_starter.binding import bind
from redis_streaming_starter.container import Container, resolve
from redis_streaming_starter.jobs import AppJob, AppJobs
from redis_streaming_starter.lifecycle import Hooks
from redis_streaming_starter.publishing import listener_handler
from redis_streaming_starter.settings import Settings, config_sources, load_settings
from redis_streaming_starter.wiring import PlannedListener, plan_listeners

__all__ = ["RedisStreamingApplication"]

R = TypeVar("R", bound=Callable[[Any], Awaitable[None]])
H = TypeVar("H", bound=Callable[[Any], Any])

log = logging.getLogger("redis_streaming_starter")

# The background services start() runs after the consumer, in this order (stop: the reverse):
# the container's provider name, and whether the settings turn it on.
_SERVICES: tuple[tuple[str, Callable[[Settings], bool]], ...] = (
    ("delayed_mover", lambda s: True),
    ("housekeeper", lambda s: True),
    ("topic_gauges", lambda s: s.metrics.enabled),
    ("registry_sweeper", lambda s: s.registry.enabled and s.registry.sweeper),
    ("health_checker", lambda s: s.registry.enabled and s.registry.health_checks),
)


class RedisStreamingApplication:
    """Builds settings and container, discovers listeners and owns the lifecycle.

    ``settings`` defaults to :func:`load_settings` (environment and ``application.yaml``);
    ``container`` to :class:`Container` (a subclass or an instance may be given);
    ``listener_packages`` adds to ``mq.listener_packages``. Start order: Redis, the
    ``@app.on_startup`` hooks, listeners (consumer), delayed mover, housekeeper, gauges,
    registry sweeper and health checker, and last the registration of this instance
    (``registry.enabled``); stop deregisters first, then drains the listeners gracefully within
    ``mq.shutdown_timeout_s``, stops the rest, runs the ``@app.on_shutdown`` hooks and closes
    Redis (docs/lifecycle.md).
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
        self.producer: Producer | None = None
        self.registration: Any = None
        self._services: dict[str, Any] = {}  # by provider name, in start order
        self._runners: list[Callable[[Any], Awaitable[None]]] = []
        self.jobs = AppJobs()
        self._hooks = Hooks()
        self._info_contributors = InfoContributors()
        self._tasks: list[asyncio.Task[None]] = []
        self._asgi: FastAPI | None = None
        self._management_asgi: FastAPI | None = None
        self.health.register("redis", redis_health(lambda: self.redis))
        self.health.register("mq", mq_health(lambda: self.consumer, lambda: self.running))
        if self.settings.registry.enabled:
            self.health.register("registry", registry_health(lambda: self.registration))

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, run the startup hooks, subscribe every listener, start consumer and
        background services. A startup hook that raises stops it with ``StartupError``."""
        if self.running:
            return
        self._configure_logging()
        for line in config_sources(self.settings).described():
            log.info("%s", line)
        # Wiring mistakes first: before Redis is connected and before anything runs.
        planned = plan_listeners(self.listener_packages, self.container, self.settings.app.name)
        try:
            self.redis = await resolve(self.container.redis)
            await self._hooks.run_startup(self.container)  # before any listener consumes
            await self.jobs.build(self.listener_packages, self.container, self.settings)
            if self.jobs.jobs:
                self.health.register("runtime", runtime_health(self.jobs, lambda: self.running))
            self.consumer = await resolve(self.container.consumer)
            await self._subscribe_listeners(self.consumer, planned)
            await self.consumer.start()
            for name, enabled in _SERVICES:
                if enabled(self.settings):
                    service = await resolve(getattr(self.container, name))
                    await service.start()
                    self._services[name] = service
            for app_job in self.jobs.jobs.values():  # after the listeners, before registration
                if app_job.enabled:
                    await self.jobs.start(app_job, self.run_job)
            if self.settings.registry.enabled:  # last: others find this instance once it is ready
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

    async def withdraw(self) -> None:
        """Stop being found, keep working: readiness DOWN and this instance deregistered
        (``registry.enabled``). ``stop()`` does it first; ``run()`` does it on SIGTERM before
        the HTTP server closes its port, so a discoverer never gets an instance that refuses
        connections. Call it from your own server's shutdown hook when you serve ``asgi``."""
        self.ready = False
        if self.registration is not None:
            registration, self.registration = self.registration, None
            await registration.stop()

    async def stop(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - the contract
        """Graceful stop: readiness DOWN and deregistration (:meth:`withdraw`), listeners finish
        in-flight work (up to ``timeout``, default ``mq.shutdown_timeout_s``), leases released,
        services stopped, Redis closed."""
        await self.withdraw()
        await self._shutdown(self.settings.mq.shutdown_timeout_s if timeout is None else timeout)
        self.running = False
        log.info("%s stopped", self.settings.app.name)

    @property
    def gauges(self) -> Any:
        """The running ``TopicGauges`` (``metrics.enabled``), else None."""
        return self._services.get("topic_gauges")

    async def refresh_gauges(self) -> None:
        """Re-read the Redis-backed gauges (lag, pending, lengths) when older than
        ``metrics.gauge_max_age_s``; bounded by ``metrics.gauge_timeout_s``, never raises."""
        if self.gauges is not None:
            await self.gauges.refresh(max_age_s=self.settings.metrics.gauge_max_age_s)

    async def run_job(self, app_job: AppJob) -> Any:
        """Start ``app_job`` in this process (the application does it at start; the actuator
        after a stop) and return its handle."""
        return await app_job.job.run(
            self.redis,
            self.settings.mq,
            runtime=app_job.options,
            metrics=await resolve(self.container.metrics),
            consumer_id=await resolve(self.container.instance_id),
        )

    def _job_timeout(self, timeout_s: float) -> float:
        own = self.settings.runtime.shutdown_timeout_s
        return timeout_s if own is None else min(own, timeout_s)

    def runner(self, fn: R) -> R:
        """Register ``async def fn(container)`` to run once the application has started (like
        Spring's ApplicationRunner); it is cancelled when the application stops."""
        self._runners.append(fn)
        return fn

    def on_startup(self, fn: H) -> H:
        """Register ``fn(container)`` (plain or ``async``) to run at start, after Redis is
        connected and before any listener consumes, in registration order, each awaited
        before the next. If one raises, startup stops: nothing was consumed, what started is
        stopped, and ``start()`` (and ``run()``) raise ``StartupError`` naming the hook.
        A function that cannot take the container raises ``ConfigurationError`` here."""
        self._hooks.add("startup", fn)
        return fn

    def on_shutdown(self, fn: H) -> H:
        """Register ``fn(container)`` (plain or ``async``) to run at stop, after the
        listeners have drained and the background services stopped, before Redis is closed;
        the last registered runs first. An exception is logged and the next hook runs. They
        run once per start, and only when every startup hook completed."""
        self._hooks.add("shutdown", fn)
        return fn

    def info_contributor(self, name: str) -> Callable[[H], H]:
        """Register ``fn(container)`` (plain or ``async``), returning a JSON-able ``dict``, as
        section ``name`` of ``/actuator/info``, called on each request (within the health
        timeout). If it raises, times out or returns something else, the section is
        ``{"error": "..."}`` and the rest of the answer is unchanged. A name that is taken
        (``app``, ``framework``, ``python``, ``redis``, ``profiles`` or another contributor's)
        raises ``ConfigurationError``."""

        return self._info_contributors.register(name)

    @property
    def info_contributors(self) -> Mapping[str, Callable[[Any], Any]]:
        """The ``/actuator/info`` contributors by section name, in registration order."""
        return dict(self._info_contributors.by_name)

    async def _run_runner(self, fn: Callable[[Any], Awaitable[None]]) -> None:
        try:
            await fn(self.container)
        except Exception:  # a cancellation (not an Exception) passes through
            log.exception("runner %s failed", getattr(fn, "__qualname__", fn))

    async def _shutdown(self, timeout_s: float) -> None:
        await self.withdraw()  # first: stop being discovered, then drain
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks.clear()
        await self.jobs.stop_all(self._job_timeout(timeout_s))  # before the listeners
        if self.consumer is not None:
            await self.consumer.stop(timeout=timeout_s)
        if self.producer is not None:  # its reply reader; requests still waiting fail
            await self.producer.close()
        for service in reversed(self._services.values()):
            await service.stop()
        self._services.clear()
        await self._hooks.run_shutdown(self.container)  # listeners drained, Redis still open
        result = self.container.shutdown_resources()
        if result is not None:
            await result
        self.redis = None

    async def _subscribe_listeners(
        self, consumer: Consumer, planned: list[PlannedListener]
    ) -> None:
        # Every listener's results (publish_to, replies to requests) go out with the
        # application's producer.
        self.producer = producer = await resolve(self.container.producer)
        for p in planned:
            handler = p.handler
            if handler is None:  # a method of a provided class: bound to the instance now
                instance = await resolve(p.provider)
                method = getattr(instance, p.method)
                handler = bind(method, self.container, f"listener {p.where}", p.spec.batch)
            policy = p.spec.retry or self.settings.mq.retry
            consumer.subscribe(
                p.spec.topic,
                await listener_handler(handler, p.spec, producer, policy, p.id, p.where),
                group=p.group,
                retry=p.spec.retry,
                start=p.spec.start,
                batch_size=p.spec.batch_size,
                rate_limit=p.spec.rate_limit,
                id=p.id,
                batch=is_batch(handler),
                filter=p.spec.filter,
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
        ``actuator.port`` puts it on its own port (then see ``management_asgi``); its requests
        (routes you add to it too) are measured when ``metrics.http`` is on."""
        if self._asgi is None:
            app = FastAPI(
                title=self.settings.app.name,
                version=self.settings.app.version,
                lifespan=self.lifespan,
            )
            if self.settings.actuator.enabled and self.settings.actuator.port is None:
                app.include_router(self.router)
            add_http_metrics(app, self)
            self._asgi = app
        return self._asgi

    @property
    def management_asgi(self) -> FastAPI:
        """The actuator alone, without the lifecycle: what ``run()`` serves on
        ``actuator.port`` when it is set; measured like ``asgi``."""
        if self._management_asgi is None:
            app = FastAPI(
                title=f"{self.settings.app.name} actuator", version=self.settings.app.version
            )
            if self.settings.actuator.enabled:
                app.include_router(self.router)
            add_http_metrics(app, self)
            self._management_asgi = app
        return self._management_asgi

    def run(self) -> None:
        """Serve ``asgi`` with uvicorn on ``app.host``:``app.port`` (and the actuator on
        ``actuator.port`` when set) until SIGTERM/SIGINT, then stop gracefully and exit 0.

        The ports are bound and the application is started before uvicorn serves, so a taken
        port, a wiring mistake or a bad setting raises here (``ConfigurationError``) before any
        listener runs. On SIGTERM the instance is withdrawn (readiness DOWN, deregistered)
        while the port still accepts connections; then uvicorn closes it and the application
        stops.
        """
        self._configure_logging()
        if warning := exposure_warning(self.settings):
            log.warning(warning)
        main, management, sockets = self._bind()
        try:
            with asyncio.Runner(loop_factory=main.config.get_loop_factory()) as runner:
                runner.run(self._serve(main, management, sockets))
        finally:
            for s in sockets:
                s.close()

    def _bind(self) -> tuple[_Server, _ManagementServer | None, list[socket.socket]]:
        """The servers of ``run()`` and their listening sockets (the application's first, then
        the actuator's when ``actuator.port`` is set); a taken port raises, nothing left open."""
        app, actuator = self.settings.app, self.settings.actuator
        level = self.settings.logging.level.lower()
        config = uvicorn.Config(
            self.asgi,
            host=app.host,
            port=app.port,
            log_level=level,
            timeout_graceful_shutdown=int(self.settings.mq.shutdown_timeout_s) + 1,
            lifespan="on",
        )
        main = _Server(config, self.withdraw)
        sockets = [_listen(app.host, app.port, "REDIS_STREAMING_APP__PORT", "the application")]
        if actuator.port is None or not actuator.enabled:
            return main, None, sockets
        management = _ManagementServer(
            uvicorn.Config(
                self.management_asgi,
                host=app.host,
                port=actuator.port,
                log_level=level,
                lifespan="off",
            )
        )
        try:
            variable = "REDIS_STREAMING_ACTUATOR__PORT (or unset it to serve it on app.port)"
            sockets.append(_listen(app.host, actuator.port, variable, "the actuator"))
        except ConfigurationError:
            sockets[0].close()
            raise
        return main, management, sockets

    async def _serve(
        self, main: _Server, management: _ManagementServer | None, sockets: list[socket.socket]
    ) -> None:
        with main.capture_signals():  # a signal while starting stops right after the start
            await self.start()  # outside the lifespan, so that a failure raises from run()
        for s in sockets:
            log.info("%s serving on http://%s", self.settings.app.name, _address(s))
        tasks = [asyncio.create_task(management.serve(sockets=sockets[1:]))] if management else []
        try:
            await main.serve(sockets=sockets[:1])  # its lifespan stops the application
        finally:
            if management is not None:
                management.should_exit = True
            await asyncio.gather(*tasks)
            if self.running:  # uvicorn failed before its lifespan ran
                await self.stop()


class _Server(uvicorn.Server):
    """The application's server: it withdraws the instance before closing its port, and the
    process exits 0 after the graceful stop a signal started."""

    def __init__(self, config: uvicorn.Config, withdraw: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self._withdraw = withdraw

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        # uvicorn re-raises the signal after its shutdown, so the process would die of
        # SIGTERM; the stop *was* graceful, so end with exit code 0 instead.
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self._withdraw()  # while the port still accepts: never found but refused
        await super().shutdown(sockets)


class _ManagementServer(uvicorn.Server):
    """The actuator's server on ``actuator.port``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the main server owns the signals and stops this one after itself


def _listen(host: str, port: int, variable: str, what: str) -> socket.socket:
    """A listening socket on ``host:port``; a taken port is a ``ConfigurationError``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        why = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ConfigurationError(
            f"{what} cannot listen on {host}:{port} ({why}); choose a free port with {variable}"
        ) from None


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
