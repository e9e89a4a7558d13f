"""``@job``: stream-processing jobs declared in the application and run by it.

A ``@job`` function in ``mq.listener_packages`` (module level, like a ``@listener``) builds a
:class:`~redis_streaming.Job`: it returns one, or it takes a parameter annotated ``Job`` and
declares the job's stages on it. Parameters defaulting to ``Provide[...]`` are injected from the
container. The application builds every job before anything starts (a wiring mistake or an
invalid job stops startup), starts them after the listeners and stops them before the
listeners, each with the ``runtime`` settings and its ``runtime.jobs.<name>`` overrides.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from dependency_injector import containers
from dependency_injector.wiring import Provide

from redis_streaming import ConfigurationError, Job, JobHandle, JobState, RuntimeOptions
from redis_streaming.integration import validate_name
from redis_streaming_starter.binding import injected_provider
from redis_streaming_starter.listener import package_modules

__all__ = ["AppJob", "AppJobs", "find_jobs", "job"]

log = logging.getLogger("redis_streaming_starter")

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__redis_streaming_job__"


@dataclass(frozen=True)
class _JobMark:
    name: str | None


@overload
def job(fn: F, /) -> F: ...


@overload
def job(*, name: str | None = None) -> Callable[[F], F]: ...


def job(fn: Any = None, /, *, name: str | None = None) -> Any:
    """Mark a module-level function as the builder of a stream-processing job.

    ``@job`` or ``@job(name="pagestats")``. The function returns a
    :class:`~redis_streaming.Job`, or takes a parameter annotated ``Job`` (a ``Job`` named
    ``name``, default the function's name, with ``runtime.partitions``) and adds stages to
    it. ``Provide[...]`` defaults are injected from the container; sync or async.
    """
    if name is not None:
        validate_name(name, "job")

    def mark(f: F) -> F:
        if not inspect.isfunction(f):
            raise ConfigurationError(f"@job decorates functions, not {f!r}")
        setattr(f, _MARK, _JobMark(name))
        return f

    return mark(fn) if fn is not None else mark


def find_jobs(packages: Iterable[str]) -> list[Callable[..., Any]]:
    """The ``@job`` functions defined at module level in ``packages`` (and subpackages)."""
    found: list[Callable[..., Any]] = []
    for package in packages:
        for module in package_modules(package):
            for obj in list(vars(module).values()):
                if getattr(obj, "__module__", None) == module.__name__ and hasattr(obj, _MARK):
                    found.append(obj)
    return found


@dataclass
class AppJob:
    """One job of the application: how it is built, its options and, once started, its
    handle. ``state``: ``created``, ``running``, ``paused``, ``stopped``, ``disabled``
    (``runtime.jobs.<name>.enabled=false``) or ``failed`` (its start raised: ``error``)."""

    name: str
    job: Job
    where: str
    options: RuntimeOptions
    enabled: bool = True
    handle: JobHandle | None = None
    error: str | None = None
    failed: bool = False
    stages: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        """The job's state in this process."""
        if not self.enabled:
            return "disabled"
        if self.failed:
            return "failed"
        if self.handle is None:
            return "created"
        return self.handle.state.value


async def _build(fn: Callable[..., Any], container: containers.Container, settings: Any) -> Job:
    mark: _JobMark = getattr(fn, _MARK)
    where = f"@job {fn.__module__}.{fn.__qualname__}"
    name = mark.name or fn.__name__
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    kwargs: dict[str, Any] = {}
    created: Job | None = None
    for p in inspect.signature(fn).parameters.values():
        if isinstance(p.default, Provide):  # type: ignore[arg-type]  # a class at run time
            value = injected_provider(p.default, container, where)()
            kwargs[p.name] = await value if inspect.isawaitable(value) else value
        elif hints.get(p.name, p.annotation) in (Job, "Job"):
            created = Job(validate_name(name, "job"), partitions=settings.runtime.partitions)
            kwargs[p.name] = created
        elif p.default is inspect.Parameter.empty:
            raise ConfigurationError(
                f"{where}: parameter {p.name!r} cannot be bound; a @job function takes a "
                "parameter annotated Job and Provide[...] injections"
            )
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        result = await result
    built = result if result is not None else created
    if not isinstance(built, Job):
        raise ConfigurationError(
            f"{where} returned {type(result).__name__}, not a Job: return the Job it builds, "
            "or take a parameter annotated Job and return nothing"
        )
    if mark.name is not None and built.name != mark.name:
        raise ConfigurationError(
            f"{where}: @job(name={mark.name!r}) but the function returned Job({built.name!r}); "
            "use one name"
        )
    if built.partitions is None:
        built.partitions = settings.runtime.partitions
    built.validate()
    return built


class AppJobs:
    """The application's jobs: built and checked at startup, then started, paused, resumed,
    stopped and restarted (the actuator does), and stopped with the application."""

    def __init__(self) -> None:
        self.jobs: dict[str, AppJob] = {}
        self._run: Callable[[AppJob], Any] | None = None

    async def build(
        self, packages: Iterable[str], container: containers.Container, settings: Any
    ) -> None:
        """Build every ``@job`` of ``packages``; a wiring mistake, an invalid job, two jobs
        of one name or an override for no job is a ``ConfigurationError``."""
        for fn in find_jobs(packages):
            where = f"@job {fn.__module__}.{fn.__qualname__}"
            try:
                built = await _build(fn, container, settings)
            except ConfigurationError:
                raise
            except Exception as exc:
                raise ConfigurationError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
            if built.name in self.jobs:
                raise ConfigurationError(
                    f"two jobs are named {built.name!r} ({self.jobs[built.name].where} and "
                    f"{where}); give each its own name"
                )
            enabled, options = settings.runtime.for_job(built.name)
            self.jobs[built.name] = AppJob(
                built.name, built, where, options, enabled, stages=[s.group for s in built.stages]
            )
        unknown = settings.runtime.unknown_jobs(self.jobs)
        if unknown:
            raise ConfigurationError(
                f"runtime.jobs has settings for {', '.join(repr(n) for n in unknown)} but the "
                f"application has no such job (its jobs: {', '.join(sorted(self.jobs)) or 'none'})"
                "; fix the name (REDIS_STREAMING_RUNTIME__JOBS__<NAME>__...) and restart"
            )

    def get(self, name: str) -> AppJob:
        """The job named ``name``; ``KeyError`` with the known names otherwise."""
        if name not in self.jobs:
            known = ", ".join(repr(n) for n in sorted(self.jobs)) or "none"
            raise KeyError(f"no job {name!r} in this application; its jobs: {known}")
        return self.jobs[name]

    async def start(self, app_job: AppJob, run: Callable[[AppJob], Any]) -> None:
        """Start one job (``run`` starts it and returns its handle); a failure marks it
        ``failed`` and raises."""
        app_job.failed, app_job.error = False, None
        try:
            app_job.handle = await run(app_job)
        except Exception as exc:
            app_job.failed, app_job.error = True, f"{type(exc).__name__}: {exc}"
            raise

    async def stop(self, app_job: AppJob, timeout_s: float | None) -> None:
        """Stop one job gracefully (its batch in progress commits or stays pending)."""
        if app_job.handle is not None and app_job.handle.state is not JobState.STOPPED:
            await app_job.handle.stop(timeout_s)

    async def stop_all(self, timeout_s: float | None) -> None:
        """Stop every job, the last started first; errors are logged, the others still stop."""
        for app_job in reversed(list(self.jobs.values())):
            try:
                await self.stop(app_job, timeout_s)
            except Exception:
                log.exception("stopping job %s failed", app_job.name)
