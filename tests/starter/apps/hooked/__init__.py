"""A listener for the lifecycle hook tests: it records what it handles in ``events``, taking
``seconds`` over a job, so that a test sees when handlers ran relative to the hooks."""

from __future__ import annotations

import asyncio
from typing import Any

from redis_streaming_starter import listener

events: list[str] = []


@listener("jobs", group="hooked")
async def work(job: dict[str, Any]) -> None:
    events.append(f"handling {job['id']}")
    await asyncio.sleep(job.get("seconds", 0))
    events.append(f"handled {job['id']}")
