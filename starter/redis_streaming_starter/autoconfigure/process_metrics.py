"""Process and Python runtime metrics, named as OpenTelemetry's semantic conventions name them.

Every instrument is observable: its callback runs when the metrics are collected (a scrape of
``/actuator/prometheus`` or ``/actuator/metrics``), never in the background and never on the
message path. On Linux the values come from ``/proc/self``; elsewhere the instruments without a
cheap source (memory, threads, open files, start time) are not registered at all rather than
reported as zero.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from opentelemetry.metrics import CallbackOptions, Meter, Observation

try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

__all__ = ["ProcessMetrics"]

_PROC = Path("/proc/self")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_USER, _SYSTEM = {"cpu.mode": "user"}, {"cpu.mode": "system"}


class ProcessMetrics:
    """Registers the process instruments on ``meter`` (see docs/metrics.md for the list):
    ``process.cpu.time`` and ``process.cpu.utilization`` by ``cpu.mode`` (user, system),
    ``process.memory.usage`` (resident) and ``process.memory.virtual`` in bytes,
    ``process.thread.count``, ``process.unix.file_descriptor.count`` and ``.limit`` (the soft
    ``RLIMIT_NOFILE``), ``process.uptime`` and ``process.start_time`` in seconds,
    ``cpython.gc.collections``, ``.collected_objects`` and ``.uncollectable_objects`` by
    ``cpython.gc.generation``, and ``python.info`` (1, labelled with the version). ``proc`` is
    where the process's ``/proc`` files are; without them (not Linux) only the instruments
    that do not need them are registered."""

    def __init__(self, meter: Meter, *, proc: Path = _PROC) -> None:
        self._proc = proc
        self._cpus = _available_cpus()
        self._last = (time.monotonic(), *os.times()[:2])  # utilization since the previous read
        linux = (proc / "stat").is_file()
        self._start_s = _start_time_s(proc) if linux else None

        meter.create_observable_counter(
            "process.cpu.time", [self._cpu_time], unit="s",
            description="CPU seconds used by this process, by cpu.mode (user, system).",
        )  # fmt: skip
        meter.create_observable_gauge(
            "process.cpu.utilization", [self._cpu_utilization], unit="1",
            description="CPU time used since the previous collection over the wall time and "
            "the CPUs available to the process (0 to 1), by cpu.mode.",
        )  # fmt: skip
        if linux:
            meter.create_observable_up_down_counter(
                "process.memory.usage", [self._memory_usage], unit="By",
                description="Resident set size: physical memory of this process.",
            )  # fmt: skip
            meter.create_observable_up_down_counter(
                "process.memory.virtual", [self._memory_virtual], unit="By",
                description="Virtual memory size of this process.",
            )  # fmt: skip
            meter.create_observable_up_down_counter(
                "process.thread.count", [self._threads], unit="{thread}",
                description="Operating-system threads of this process.",
            )  # fmt: skip
            meter.create_observable_up_down_counter(
                "process.unix.file_descriptor.count", [self._open_fds], unit="{file_descriptor}",
                description="File descriptors this process has open.",
            )  # fmt: skip
        if resource is not None:
            meter.create_observable_gauge(
                "process.unix.file_descriptor.limit", [self._fd_limit], unit="{file_descriptor}",
                description="Most file descriptors this process may open (soft RLIMIT_NOFILE).",
            )  # fmt: skip
        if self._start_s is not None:
            meter.create_observable_gauge(
                "process.uptime", [self._uptime], unit="s",
                description="Seconds since this process started.",
            )  # fmt: skip
            meter.create_observable_gauge(
                "process.start_time", [self._start_time], unit="s",
                description="When this process started, in seconds since the Unix epoch.",
            )  # fmt: skip
        if platform.python_implementation() == "CPython":
            for stat, name, what in (
                ("collections", "collections", "Garbage collections"),
                ("collected", "collected_objects", "Objects the garbage collector freed"),
                ("uncollectable", "uncollectable_objects", "Objects it found uncollectable"),
            ):
                meter.create_observable_counter(
                    f"cpython.gc.{name}", [_gc_callback(stat)],
                    unit="{collection}" if stat == "collections" else "{object}",
                    description=f"{what}, by cpython.gc.generation (0, 1, 2).",
                )  # fmt: skip
        v = sys.version_info
        self._info = Observation(1, {
            "implementation": platform.python_implementation(),
            "version": f"{v.major}.{v.minor}.{v.micro}",
            "major": str(v.major), "minor": str(v.minor), "patchlevel": str(v.micro),
        })  # fmt: skip
        meter.create_observable_gauge(
            "python.info", [self._python_info],
            description="Always 1; labelled with the Python implementation and version.",
        )  # fmt: skip

    def _cpu_time(self, _: CallbackOptions) -> Iterable[Observation]:
        user, system = os.times()[:2]
        return [Observation(user, _USER), Observation(system, _SYSTEM)]

    def _cpu_utilization(self, _: CallbackOptions) -> Iterable[Observation]:
        now, user, system = time.monotonic(), *os.times()[:2]
        then, user0, system0 = self._last
        elapsed = (now - then) * self._cpus
        if elapsed <= 0:
            return []
        self._last = (now, user, system)
        return [
            Observation(max(0.0, (user - user0) / elapsed), _USER),
            Observation(max(0.0, (system - system0) / elapsed), _SYSTEM),
        ]

    def _stat(self) -> list[bytes]:
        """``/proc/self/stat`` from field 3 on (the command name in field 2 may hold spaces):
        field n of proc(5) is at index n - 3."""
        text = _read(self._proc / "stat")
        return text[text.rindex(b")") + 2 :].split()

    def _memory_usage(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(int(self._stat()[21]) * _PAGE_SIZE)]  # 24 rss, in pages

    def _memory_virtual(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(int(self._stat()[20]))]  # 23 vsize, in bytes

    def _threads(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(int(self._stat()[17]))]  # 20 num_threads

    def _open_fds(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(len(os.listdir(self._proc / "fd")))]

    def _fd_limit(self, _: CallbackOptions) -> Iterable[Observation]:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return [] if soft == resource.RLIM_INFINITY else [Observation(soft)]

    def _uptime(self, _: CallbackOptions) -> Iterable[Observation]:
        assert self._start_s is not None
        return [Observation(max(0.0, time.time() - self._start_s))]

    def _start_time(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._start_s)] if self._start_s is not None else []

    def _python_info(self, _: CallbackOptions) -> Iterable[Observation]:
        return [self._info]


def _gc_callback(stat: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
    """A callback observing ``gc.get_stats()[generation][stat]`` for every generation."""

    def observe(_: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(s[stat], {"cpython.gc.generation": generation})
            for generation, s in enumerate(gc.get_stats())
        ]

    return observe


def _read(path: Path) -> bytes:
    """A small ``/proc`` file in one read: a third of the cost of ``Path.read_text``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 8192)
    finally:
        os.close(fd)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _start_time_s(proc: Path) -> float | None:
    """Process start in seconds since the epoch: field 22 of ``/proc/self/stat`` (clock ticks
    since boot) plus the boot time (``btime`` of ``/proc/stat``)."""
    try:
        text = _read(proc / "stat")
        ticks = int(text[text.rindex(b")") + 2 :].split()[19])
        for line in (proc.parent / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return None
