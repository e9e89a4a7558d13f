"""Every test talks to a real server: see redis_streaming.testing.pytest_plugin."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from redis_streaming import MQOptions
from tests.helpers import fast_mq

pytest_plugins = ["redis_streaming.testing.pytest_plugin", "redis_streaming_starter.testing_plugin"]

# Modules whose tests assert on elapsed time (delays, rates, deadlines): `make test` runs them
# alone after the rest has run on two workers, so a neighbour's CPU use cannot push a bound.
SERIAL_MODULES = frozenset(
    (
        "tests/examples/test_registry_example.py",
        "tests/examples/test_scaling_example.py",
        "tests/metrics/test_gauges.py",
        "tests/mq/test_consumer.py",
        "tests/mq/test_consumer_processes.py",
        "tests/mq/test_delayed.py",
        "tests/mq/test_rate_limit.py",
        "tests/mq/test_retry_dlq.py",
        "tests/ratelimit/test_limiters.py",
        "tests/registry/test_sweeper.py",
        "tests/runtime/test_failover.py",
        "tests/sink/test_postgres_sink_exactly_once.py",
        "tests/sink/test_sink_rate_limit.py",
        "tests/starter/test_actuator_health.py",
        "tests/starter/test_lifecycle.py",
        "tests/starter/test_listener_rate_limit.py",
        "tests/testing/test_postgres.py",
        "tests/window/test_close.py",
    )
)
_ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.relative_to(_ROOT).as_posix() in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)


_DUMP_AFTER_S = float(os.environ.get("RS_TEST_DUMP_AFTER_S", "100"))  # < the 120 s timeout


def _dump_tasks() -> None:
    print("\n=== asyncio tasks of a test running for 100 s ===", file=sys.stderr)
    for task in asyncio.all_tasks():
        print(f"--- {task!r}", file=sys.stderr)
        coro = task.get_coro()
        while coro is not None:  # follow the await chain into libraries
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                print(f"    {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}",
                      file=sys.stderr)  # fmt: skip
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


@pytest.fixture(autouse=True)
async def _dump_tasks_when_stuck() -> AsyncIterator[None]:
    """Print every asyncio task's stack when a test hangs: thread dumps cannot show them."""
    handle = asyncio.get_running_loop().call_later(_DUMP_AFTER_S, _dump_tasks)
    yield
    handle.cancel()


@pytest.fixture
def fast_options(rs_namespace: str) -> MQOptions:
    """``MQOptions`` for the test's namespace with fast leases and rebalancing (``FAST``)."""
    return fast_mq(rs_namespace)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes the test started: after it, each one still running is killed, and all are
    reaped."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()
