"""The job, the listener and the container of the test application."""

from __future__ import annotations

from dependency_injector import providers
from dependency_injector.wiring import Provide

from redis_streaming import Job
from redis_streaming_starter import Container, job, listener

seen: list[str] = []


class JobsContainer(Container):
    separator = providers.Object("=")


def counter(state: int | None, word: str) -> tuple[int, str]:
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
