"""examples/retry_dlq: retries with backoff, dead letters browsed, replayed after the fix and
purged through the actuator (with its token), and listed by the CLI."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from examples.retry_dlq import payments
from examples.retry_dlq.main import EXPOSE, create_app

from redis_streaming_starter.testing import AppTestFactory

TOKEN = "retry-dlq-example-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DLQ = "/actuator/topics/payments/dlq"


@pytest.fixture(autouse=True)
def _fresh_payments(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example keeps its state in module globals: give each test its own."""
    monkeypatch.setattr(payments, "SETTLED", {})
    monkeypatch.setattr(payments, "SUPPORTED_CURRENCIES", set(payments.SUPPORTED_CURRENCIES))


SETTINGS = {"app": {"name": "payments"}, "actuator": {"expose": EXPOSE, "token": TOKEN}}


def _cli(url: str, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_STREAMING_REDIS__URL": url,
        "REDIS_STREAMING_MQ__NAMESPACE": namespace,
    }
    cmd = [sys.executable, "-m", "redis_streaming_starter.cli", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30, check=False)


async def test_retries_dead_letters_replay_and_purge(rs_app: AppTestFactory) -> None:
    async with rs_app(create_app, settings=SETTINGS) as t:  # its runner sends the payments
        http = t.http

        async def dead_letters(count: int) -> bool:
            return bool((await http.get(DLQ)).json()["total"] == count)

        # the gateway timed out once on the large payments: settled on their second attempt
        await t.handled(payments.settle, 3, timeout=10)
        assert (await http.get("/payments")).json() == {"p-1": 1, "p-2": 2, "p-4": 2}

        # CHF failed three times (two retries with backoff), the legacy payload not at all
        await t.handled(payments.settle, 3, timeout=10, outcome="dead_lettered")
        assert await dead_letters(3)
        entries = {e["key"]: e for e in (await http.get(DLQ)).json()["entries"]}
        assert {
            key: (e["reason"], e["attempts"], e["errorType"]) for key, e in entries.items()
        } == {
            "p-3": ("max_attempts", 3, "UnsupportedCurrency"),
            "p-5": ("max_attempts", 3, "UnsupportedCurrency"),
            "p-6": ("undecodable", 1, "DecodeError"),
        }
        assert entries["p-3"]["payload"] == {"id": "p-3", "amount": 40.0, "currency": "CHF"}
        assert "amount: Input should be a valid number" in entries["p-6"]["error"]
        assert "twelve francs" not in entries["p-6"]["error"]  # the payload stays out of errors
        assert entries["p-6"]["payload"]["amount"] == "twelve francs"  # and is in the DLQ
        one = (await http.get(f"{DLQ}/{entries['p-3']['id']}")).json()
        assert "UnsupportedCurrency" in one["traceback"]
        settle = (await http.get("/actuator/listeners")).json()["listeners"]["settle"]
        assert (settle["processed"], settle["retried"], settle["deadLettered"]) == (3, 6, 3)

        # the CLI reads the same dead letters from Redis
        listed = await asyncio.to_thread(_cli, t.url, t.namespace, "dlq", "list", "payments")
        assert listed.returncode == 0, listed.stderr
        # one line per dead letter (a multi-line error continues on the lines below it)
        lines = [line for line in listed.stdout.splitlines() if re.match(r"\d+-\d+  ", line)]
        assert len(lines) == 3
        assert sum("max_attempts  attempts 3" in line for line in lines) == 2
        assert sum("undecodable  attempts 1" in line for line in lines) == 1

        # replaying and purging change things: no token, no change
        denied: list[Any] = [
            await http.post(f"{DLQ}/replay", json={"all": True}),
            await http.post(f"{DLQ}/replay", json={"all": True}, headers={"Authorization": "x"}),
            await http.delete(DLQ),
        ]
        assert [r.status_code for r in denied] == [401, 401, 401]
        assert denied[0].headers["WWW-Authenticate"].startswith("Bearer")
        assert await dead_letters(3)

        # deploy the fix, replay the CHF payments: settled as attempt 1 of a fresh delivery
        assert (await http.put("/currencies/CHF")).json() == ["CHF", "EUR", "USD"]
        ids = [entries["p-3"]["id"], entries["p-5"]["id"]]
        replayed = await http.post(f"{DLQ}/replay", json={"ids": ids}, headers=AUTH)
        assert replayed.status_code == 200, replayed.text
        assert replayed.json() == {"replayed": 2}
        await t.handled(payments.settle, 2, timeout=10)  # the replayed payments
        assert payments.SETTLED == {"p-1": 1, "p-2": 2, "p-3": 1, "p-4": 2, "p-5": 1}

        # what no fix can help is purged
        page = (await http.get(DLQ)).json()
        assert [e["key"] for e in page["entries"]] == ["p-6"]
        purged = await http.delete(DLQ, headers=AUTH)
        assert purged.status_code == 200, purged.text
        assert purged.json() == {"purged": 1}
        assert await dead_letters(0)
    assert not t.app.running
