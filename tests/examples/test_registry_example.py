"""examples/registry: two catalog processes and a shop find each other through the registry."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from redis_streaming.testing import free_port

# Slower than tests.helpers.FAST["registry"]: three applications, each a process of its own,
# share a busy machine; the assertions below count on a 2 s TTL.
FAST_REGISTRY = {
    "REDIS_STREAMING_REGISTRY__TTL_S": "2",
    "REDIS_STREAMING_REGISTRY__HEARTBEAT_INTERVAL_S": "0.5",
    "REDIS_STREAMING_REGISTRY__SWEEP_INTERVAL_S": "0.5",
    "REDIS_STREAMING_LOGGING__LEVEL": "WARNING",
}


def _start(app: str, port: int, url: str, namespace: str) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_STREAMING_REDIS__URL": url,
        "REDIS_STREAMING_MQ__NAMESPACE": namespace,
        "REDIS_STREAMING_APP__PORT": str(port),
        **FAST_REGISTRY,
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


# -- the launcher: python -m examples.registry ------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_the_launcher_keeps_the_rest_running_when_one_catalog_stops(
    rs_server_url: str,
    rs_namespace: str,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
    sig: signal.Signals,
) -> None:
    shop, c1, c2 = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_STREAMING_")}
    env |= {**FAST_REGISTRY, "REDIS_STREAMING_REDIS__URL": rs_server_url,
            "REDIS_STREAMING_MQ__NAMESPACE": rs_namespace}  # fmt: skip
    out = tmp_path / "launcher.out"
    cmd = [sys.executable, "-m", "examples.registry", "--shop-port", str(shop),
           "--catalog-port", str(c1), "--catalog-port", str(c2)]  # fmt: skip
    with out.open("wb") as sink:
        launcher = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.DEVNULL)
    procs.append(launcher)
    pids: dict[int, int] = {}  # port -> pid, as the launcher prints them

    def printed() -> bool:
        for m in re.finditer(
            r"(catalog|shop): pid (\d+)  http://127\.0\.0\.1:(\d+)", out.read_text()
        ):
            pids[int(m[3])] = int(m[2])
        return len(pids) == 3

    _until(printed, 20, "the launcher to print the three PIDs")
    try:
        deadline = time.monotonic() + 30
        for port in (c1, c2, shop):
            _ready(port, deadline)
        base = f"http://127.0.0.1:{shop}"
        assert len({httpx.get(f"{base}/quote/sku-1").json()["catalog"] for _ in range(4)}) == 2

        os.kill(pids[c1], sig)
        _until(lambda: not _alive(pids[c1]), 20, "the launcher to reap the stopped catalog")
        if sig == signal.SIGTERM:  # deregistered at once
            assert len(httpx.get(f"{base}/actuator/services/catalog").json()["instances"]) == 1
        else:  # gone within ttl_s plus one sweep (2 + 0.5 s), with slack for a loaded machine

            def one_left() -> bool:
                found = httpx.get(f"{base}/actuator/services/catalog").json()["instances"]
                return len(found) == 1

            _until(one_left, 2 + 0.5 + 3, "the killed catalog to leave the registry")
        assert launcher.poll() is None  # the launcher and the others keep running
        assert all(_alive(pids[p]) for p in (c2, shop))
        quotes = [httpx.get(f"{base}/quote/sku-1") for _ in range(3)]
        assert [q.status_code for q in quotes] == [200] * 3
        assert len({q.json()["catalog"] for q in quotes}) == 1  # all from the other catalog
    finally:
        launcher.send_signal(signal.SIGTERM)  # stops every instance it started
        assert launcher.wait(30) == 0
    assert not any(_alive(pid) for pid in pids.values())
