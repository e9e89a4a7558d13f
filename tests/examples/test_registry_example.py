"""examples/registry: two catalog processes and a shop find each other through the registry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from redis_streaming.testing import free_port


def _start(app: str, port: int, url: str, namespace: str) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_STREAMING_REDIS__URL": url,
        "REDIS_STREAMING_MQ__NAMESPACE": namespace,
        "REDIS_STREAMING_APP__PORT": str(port),
        "REDIS_STREAMING_REGISTRY__TTL_S": "2",
        "REDIS_STREAMING_REGISTRY__HEARTBEAT_INTERVAL_S": "0.5",
        "REDIS_STREAMING_REGISTRY__SWEEP_INTERVAL_S": "0.5",
        "REDIS_STREAMING_LOGGING__LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "redis_streaming_starter.cli", "run", app]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ready(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/actuator/health/readiness").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the app on port {port} did not become ready")


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_shop_finds_both_catalogs_and_notices_them_leave(
    rs_server_url: str, rs_namespace: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    c1, c2, shop = free_port(), free_port(), free_port()
    procs.append(_start("examples.registry.catalog:app", c1, rs_server_url, rs_namespace))
    procs.append(_start("examples.registry.catalog:app", c2, rs_server_url, rs_namespace))
    procs.append(_start("examples.registry.shop:app", shop, rs_server_url, rs_namespace))
    deadline = time.monotonic() + 30
    for port in (c1, c2, shop):
        _ready(port, deadline)
    base = f"http://127.0.0.1:{shop}"

    served = {httpx.get(f"{base}/quote/sku-1").json()["catalog"] for _ in range(4)}
    assert len(served) == 2  # round robin over both catalog instances
    services = httpx.get(f"{base}/actuator/services/catalog", params={"filter": "region==eu"})
    assert len(services.json()["instances"]) == 2

    # graceful stop: deregistered at once
    procs[0].send_signal(signal.SIGTERM)
    assert procs[0].wait(20) == 0
    left = httpx.get(f"{base}/actuator/services/catalog").json()["instances"]
    assert len(left) == 1
    assert {httpx.get(f"{base}/quote/sku-1").json()["catalog"] for _ in range(3)} == {
        left[0]["instance_id"]
    }

    # kill -9: gone within ttl plus one sweep, then the shop says no catalog is registered
    procs[1].kill()
    procs[1].wait()
    deadline = time.monotonic() + 2 + 0.5 + 2
    while httpx.get(f"{base}/actuator/services/catalog").json()["instances"]:
        assert time.monotonic() < deadline, "the killed instance was not removed in time"
        time.sleep(0.1)
    missing = httpx.get(f"{base}/quote/sku-1")
    assert missing.status_code == 503
    assert "no healthy catalog" in missing.json()["detail"]
