"""``redis-streaming jobs list|describe|reset`` against a real server: what Redis holds of the
namespace's jobs, and a reset refused while an instance runs the job."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from redis_streaming import Job, MQOptions, StateReader
from tests.runtime.support import feed, running_job, topic, wait_idle
from tests.starter.support import cli


def counter(state: int | None, word: str) -> tuple[int, str]:
    n = (state or 0) + 1
    return n, f"{word}={n}"


def count_job() -> Job:
    job = Job("clicount")
    job.source("words", value_type=str).stateful_map(counter, name="n").to("counts")
    return job


async def test_list_describe_and_reset(
    capsys: pytest.CaptureFixture[str], cli_env: str, rs_redis: Any, fast_options: MQOptions
) -> None:
    options = fast_options  # the namespace of cli_env
    assert await asyncio.to_thread(cli, capsys, "jobs", "list") == (0, "(no jobs)\n", "")
    await feed(rs_redis, options, "words", [("a", "a"), ("b", "b"), ("a", "a")], partitions=2)
    await topic(rs_redis, options, "counts")
    async with running_job(count_job(), rs_redis, options, consumer_id="inst-1") as handle:
        await wait_idle(rs_redis, options, handle)
        code, out, _ = await asyncio.to_thread(cli, capsys, "jobs", "list")
        assert (code, out) == (0, "clicount  running  1 stage(s)  lag 0\n")
        code, out, _ = await asyncio.to_thread(cli, capsys, "jobs", "describe", "clicount")
        assert code == 0
        assert out.splitlines()[0] == "job clicount: running on inst-1"
        assert "store n: 2 keys" in out
        assert out.count("owner inst-1") == 2
        code, out, _ = await asyncio.to_thread(
            cli, capsys, "jobs", "describe", "clicount", "--json"
        )
        described = json.loads(out)
        assert described["stages"][0]["stores"][0]["keys"] == 2
        assert {p["owner"] for p in described["stages"][0]["partitions"]} == {"inst-1"}
        code, _, err = await asyncio.to_thread(cli, capsys, "jobs", "reset", "clicount", "--yes")
        assert code == 1
        assert "job 'clicount' is running (partitions owned by inst-1)" in err
        assert len(err.strip().splitlines()) == 1
    code, _, err = await asyncio.to_thread(cli, capsys, "jobs", "reset", "clicount")
    assert code == 1
    assert "add --yes" in err
    code, out, _ = await asyncio.to_thread(cli, capsys, "jobs", "reset", "clicount", "--yes")
    assert code == 0
    assert out.startswith("reset clicount: ")
    assert await StateReader(rs_redis, options).items("clicount", "n") == {}


def test_unknown_job(capsys: pytest.CaptureFixture[str], cli_env: str) -> None:
    code, _, err = cli(capsys, "jobs", "describe", "nope")
    assert code == 1
    assert "no job named 'nope'" in err
