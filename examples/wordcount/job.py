"""The word count job: sentences in, a running count per word out, exactly once.

``sentences`` (``{"text": str}``) is split on whitespace, each word is keyed by its lower-cased
form (a repartition: every count of one word lives on one partition of the job), a ``counts``
store keeps the running count per word, and every update goes to ``word-counts`` as
``{"word": str, "count": int}`` keyed by the word. Because the runtime commits state, outputs and
the input acknowledgement in one atomic step per batch, the outputs of each word are exactly 1,
2, 3, ... with no gap and no repeat, even across crashes and takeovers.
"""

from __future__ import annotations

from pydantic import BaseModel

from redis_streaming import Job

__all__ = [
    "INPUT",
    "JOB",
    "OUTPUT",
    "PARTITIONS",
    "STORE",
    "Sentence",
    "WordCount",
    "build_job",
    "count",
    "words",
]

JOB = "wordcount"
INPUT = "sentences"
OUTPUT = "word-counts"
STORE = "counts"
PARTITIONS = 12


class Sentence(BaseModel):
    """One input record: a line of text."""

    text: str


class WordCount(BaseModel):
    """One output record: ``word`` has been seen ``count`` times so far."""

    word: str
    count: int


def words(sentence: Sentence) -> list[str]:
    """The sentence's words, split on whitespace."""
    return sentence.text.split()


def count(state: int | None, word: str) -> tuple[int, WordCount]:
    """The next count of ``word`` (lower-cased: the record's key) and the update to emit."""
    total = (state or 0) + 1
    return total, WordCount(word=word.lower(), count=total)


def build_job(partitions: int = PARTITIONS) -> Job:
    """The job ``wordcount``; ``partitions`` is the partition count of its internal topic."""
    job = Job(JOB, partitions=partitions)
    (
        job.source(INPUT, value_type=Sentence)
        .flat_map(words)
        .key_by(str.lower)
        .stateful_map(count, name=STORE)
        .to(OUTPUT)
    )
    return job
