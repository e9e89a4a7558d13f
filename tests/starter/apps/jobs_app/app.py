"""The job, the listener and the container of the test application."""

from __future__ import annotations

import os
import time

from dependency_injector import providers
from dependency_injector.wiring import Provide

from redis_streaming import Job
from redis_streaming_starter import Container, job, listener

seen: list[str] = []


class JobsContainer(Container):
    separator = providers.Object("=")


# A pause per record (JOBS_APP_SLOW_MS), so that a test can stop the job while it is busy.
SLOW_S = float(os.environ.get("JOBS_APP_SLOW_MS", "0")) / 1000


def counter(state: int | None, word: str) -> tuple[int, str]:
    if SLOW_S:
        time.sleep(SLOW_S)
    n = (state or 0) + 1
    return n, f"{word}{SEPARATOR[0]}{n}"


SEPARATOR = ["="]


@job(name="wordcount")
def wordcount(job: Job, sep: str = Provide["separator"]) -> None:
    SEPARATOR[0] = sep
    job.source("words", value_type=str).key_by(lambda w: w).stateful_map(counter, name="counts").to(
        "counted"
    )


@listener("counted", group="printer")
async def printed(line: str) -> None:
    seen.append(line)
