"""The job DSL end to end on a single server and on a 3-master cluster: each operator's output
lands in its topic exactly once, on the partition of its key."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from redis_streaming import (
    Admin,
    Job,
    MQOptions,
    ProcessContext,
    StateReader,
    StoreSpec,
    partition_for_key,
)
from tests.runtime.support import feed, read, read_partitions, running_job, topic, wait_idle

pytestmark = pytest.mark.cluster


async def test_map_filter_flat_map_sync_and_async_keep_the_records_key(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "lines", [("a", "x yy zzz"), ("b", "q rr")])
    await topic(rs_redis, fast_options, "words")

    async def longer_than_one(word: str) -> bool:
        return len(word) > 1

    async def upper(word: str) -> str:
        return word.upper()

    job = Job("dsl1", partitions=2)
    (job.source("lines", value_type=str)
        .flat_map(str.split)
        .filter(longer_than_one)
        .map(upper)
        .map(lambda w: f"<{w}>")
        .to("words"))  # fmt: skip
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    assert sorted(await read(rs_redis, fast_options, "words")) == [
        ("a", "<YY>"), ("a", "<ZZZ>"), ("b", "<RR>"),
    ]  # fmt: skip


async def test_key_by_repartitions_through_the_internal_topic_and_stateful_map_counts(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    words = ["a", "b", "a", "c", "a", "b", "c", "c", "stop"]
    await feed(rs_redis, fast_options, "words-in", words)
    await topic(rs_redis, fast_options, "counts", 3)

    def count(state: int | None, word: str) -> tuple[int | None, Any]:
        if word == "c" and state == 2:
            return None, "c-deleted"  # None: the key's state goes
        n = (state or 0) + 1
        return n, f"{word}={n}"

    job = Job("dsl2", partitions=3)
    job.source("words-in", value_type=str).key_by(lambda w: w).stateful_map(
        count, name="counts"
    ).to("counts")
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    # The internal topic has the job's partition count; each record on its key's partition.
    internal = await read_partitions(rs_redis, fast_options, "dsl2.s1.repartition", 3)
    info = await Admin(rs_redis, fast_options).describe_topic("dsl2.s1.repartition")
    assert len(info.partitions) == 3
    assert sorted(v for p in internal.values() for _, v in p) == sorted(words)
    for p, entries in internal.items():
        assert all(key == value and partition_for_key(key, 3) == p for key, value in entries)
    outputs = await read_partitions(rs_redis, fast_options, "counts", 3)
    for p, entries in outputs.items():
        assert all(partition_for_key(key, 3) == p for key, _ in entries)
    by_key = {k: [v for kk, v in outputs[partition_for_key(k, 3)] if kk == k] for k in "abc"}
    assert by_key == {
        "a": ["a=1", "a=2", "a=3"], "b": ["b=1", "b=2"], "c": ["c=1", "c=2", "c-deleted"],
    }  # fmt: skip
    assert await StateReader(rs_redis, fast_options).items("dsl2", "counts") == {
        "a": 3, "b": 2, "stop": 1,
    }  # fmt: skip


async def test_process_keeps_value_map_and_list_state_per_key_and_emits(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    events = [("u1", "a"), ("u2", "b"), ("u1", "b"), ("u1", "a"), ("u2", "reset")]
    await feed(rs_redis, fast_options, "events", events)
    await topic(rs_redis, fast_options, "seen")

    async def track(ctx: ProcessContext, event: str) -> None:
        total, kinds, trail = ctx.state("total"), ctx.state("kinds"), ctx.state("trail")
        if event == "reset":
            total.clear()
            kinds.remove("b")
            trail.set([])
            ctx.emit(f"{ctx.key} reset")
            return
        total.set(total.get(0) + 1)
        kinds.put(event, kinds.get(event, 0) + 1)
        trail.append(event)
        ctx.emit(f"{ctx.key}:{total.get()}")

    job = Job("dsl3", partitions=2)
    job.source("events", value_type=str).process(
        track, stores=["total", ("kinds", "map"), StoreSpec("trail", "list")]
    ).to("seen")
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    assert sorted(await read(rs_redis, fast_options, "seen")) == [
        ("u1", "u1:1"), ("u1", "u1:2"), ("u1", "u1:3"), ("u2", "u2 reset"), ("u2", "u2:1"),
    ]  # fmt: skip
    reader = StateReader(rs_redis, fast_options)
    assert await reader.items("dsl3", "total") == {"u1": 3}
    assert await reader.items("dsl3", "kinds") == {"u1": {"a": 2, "b": 1}}
    assert await reader.items("dsl3", "trail") == {"u1": ["a", "b", "a"]}


async def test_branch_takes_the_first_match_and_merge_joins_streams_within_and_across_stages(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    await feed(rs_redis, fast_options, "numbers", [(str(n), n) for n in range(10)])
    await topic(rs_redis, fast_options, "small-or-even")
    await topic(rs_redis, fast_options, "all-again")

    job = Job("dsl4", partitions=2)
    small, even = job.source("numbers", value_type=int).branch(
        lambda n: n < 3,
        lambda n: n % 2 == 0,  # 0 and 2 match both: the first arm only
    )  # odd n >= 3 match none: dropped
    small.map(lambda n: f"small {n}").merge(even.map(lambda n: f"even {n}")).to("small-or-even")
    rekeyed = small.key_by(lambda n: f"k{n}")
    rekeyed.merge(even).map(str).to("all-again")  # a key_by stage and s0 meet in a new stage
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    assert sorted(v for _, v in await read(rs_redis, fast_options, "small-or-even")) == [
        "even 4", "even 6", "even 8", "small 0", "small 1", "small 2",
    ]  # fmt: skip
    assert sorted(await read(rs_redis, fast_options, "all-again")) == [
        ("4", "4"), ("6", "6"), ("8", "8"), ("k0", "0"), ("k1", "1"), ("k2", "2"),
    ]  # fmt: skip
    assert [s.group for s in handle.status().stages] == ["dsl4.s0", "dsl4.s1", "dsl4.s2"]


class Click(BaseModel):
    """A pydantic value that must reach the next stage as itself."""

    user: str
    page: str


async def test_a_pydantic_value_crosses_a_key_by_as_a_model_and_to_writes_keyed_outputs(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    clicks = [Click(user=f"u{n % 3}", page=f"p{n % 2}") for n in range(6)]
    await feed(rs_redis, fast_options, "clicks", [c.model_dump() for c in clicks])
    await topic(rs_redis, fast_options, "pages", 3)
    seen: list[Any] = []

    def per_page(state: int | None, click: Click) -> tuple[int, str]:
        seen.append(click)
        return (state or 0) + 1, click.user

    job = Job("dsl5", partitions=2)
    job.source("clicks", value_type=Click).key_by(lambda c: c.page).stateful_map(
        per_page, name="per-page"
    ).to("pages")
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    assert sorted(seen, key=lambda c: (c.user, c.page)) == sorted(
        clicks, key=lambda c: (c.user, c.page)
    )
    assert all(type(c) is Click for c in seen)
    outputs = await read_partitions(rs_redis, fast_options, "pages", 3)
    assert sorted(o for p in outputs.values() for o in p) == sorted(
        (c.page, c.user) for c in clicks
    )
    for p, entries in outputs.items():
        assert all(partition_for_key(key, 3) == p for key, _ in entries)
    assert await StateReader(rs_redis, fast_options).items("dsl5", "per-page") == {
        "p0": 3, "p1": 3,
    }  # fmt: skip
