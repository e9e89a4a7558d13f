"""Bad input and bad jobs: an entry that cannot be decoded, a value of the wrong type and a
function that always raises each end in the topic's dead letters while the rest of the batch
commits once and the job goes on; a job that cannot run is refused before any I/O."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from redis.asyncio import Redis

from redis_streaming import (
    DeadLetters,
    InvalidArgument,
    InvalidName,
    Job,
    MQOptions,
    ProcessContext,
    RuntimeOptions,
    StateReader,
)
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.wire.codec import entry_args
from tests.runtime.support import RUNTIME, feed, read, running_job, send, topic, wait_idle


class Order(BaseModel):
    """The input's value type."""

    item: str
    qty: int


def total(state: int | None, order: Order) -> tuple[int, str]:
    if order.item == "boom":
        raise RuntimeError(f"cannot handle {order.item}")
    n = (state or 0) + order.qty
    return n, f"{order.item}={n}"


@pytest.mark.cluster
async def test_bad_entries_are_dead_lettered_and_the_rest_of_the_batch_commits_once(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    good = [("a", {"item": "a", "qty": 1}), ("b", {"item": "b", "qty": 2})]
    await feed(rs_redis, fast_options, "orders", good, partitions=1)
    await topic(rs_redis, fast_options, "totals")
    stream = Keys(fast_options.namespace).stream("orders", 0)
    undecodable = entry_args(b"{not json", "application/json", "x", None, 1)
    await rs_redis.execute_command("XADD", stream, "*", *undecodable)
    await send(rs_redis, fast_options, "orders", [
        ("y", {"item": "y"}),  # no qty: not an Order
        ("a", {"item": "boom", "qty": 5}),  # the function raises
        ("a", {"item": "a", "qty": 10}),
    ])  # fmt: skip
    job = Job("bad1")
    job.source("orders", value_type=Order).stateful_map(total, name="totals").to("totals")
    runtime = RuntimeOptions(batch_size=50, max_attempts=2, retry_backoff_ms=10)
    async with running_job(job, rs_redis, fast_options, runtime) as handle:
        await wait_idle(rs_redis, fast_options, handle)
        letters = await DeadLetters(rs_redis, fast_options).list("orders")
        assert handle.status().stages[0].dead_lettered == 3
        await send(rs_redis, fast_options, "orders", [("b", {"item": "b", "qty": 1})])
        await wait_idle(rs_redis, fast_options, handle)  # still running
    assert sorted(await read(rs_redis, fast_options, "totals")) == [
        ("a", "a=1"), ("a", "a=11"), ("b", "b=2"), ("b", "b=3"),
    ]  # fmt: skip
    assert await StateReader(rs_redis, fast_options).items("bad1", "totals") == {"a": 11, "b": 3}
    found = {(d.key, d.reason, d.group, d.attempts) for d in reversed(letters)}
    assert found == {
        ("x", "undecodable", "bad1.s0", 1),
        ("y", "undecodable", "bad1.s0", 1),
        ("a", "max_attempts", "bad1.s0", 2),
    }
    errors = {d.key: d.error for d in letters}
    assert "qty" in errors["y"]
    assert errors["a"] == "cannot handle boom"
    assert errors["x"]
    assert {d.payload for d in letters if d.key == "a"} == {b'{"item":"boom","qty":5}'}


async def namespace_keys(redis: Any, options: MQOptions) -> list[bytes]:
    return [k async for k in redis.scan_iter(match=f"{options.namespace}:*")]


async def test_invalid_jobs_are_refused_before_any_io(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    with pytest.raises(InvalidName):
        Job("no spaces")
    with pytest.raises(InvalidName):
        Job("j").source("a:b")
    with pytest.raises(InvalidName):
        Job("j").source("in").map(str).to("{out}")
    with pytest.raises(InvalidName):
        Job("j").source("in").key_by(str, name="s 1")
    job = Job("j")
    stream = job.source("in")
    stream.stateful_map(lambda s, v: (s, v), name="dup")
    with pytest.raises(InvalidArgument, match="dup"):
        stream.process(lambda ctx, v: None, stores=["dup"])
    # An unreachable server: any I/O would raise a connection error instead.
    nowhere = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        with pytest.raises(InvalidArgument, match="no source"):
            await Job("empty").run(nowhere, fast_options)
        bare = Job("bare")
        bare.source("in")
        with pytest.raises(InvalidArgument, match="no operator"):
            await bare.run(nowhere, fast_options)
        with pytest.raises(InvalidArgument, match="no source"):
            await Job("empty").run(rs_redis, fast_options)
        assert await namespace_keys(rs_redis, fast_options) == []
        await feed(rs_redis, fast_options, "in", [])
        await topic(rs_redis, fast_options, "out")
        first = Job("twice")
        first.source("in").to("out")
        second = Job("twice")
        second.source("in").map(str).to("out")
        async with running_job(first, rs_redis, fast_options):
            with pytest.raises(InvalidArgument, match="already runs"):
                await second.run(nowhere, fast_options, runtime=RUNTIME)
        async with running_job(second, rs_redis, fast_options):  # once the first stopped
            pass
    finally:
        await nowhere.aclose()


@pytest.mark.cluster
async def test_a_failing_records_state_writes_and_outputs_are_undone(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    """The record's function wrote state and produced an output before a later operator
    raised: both are undone; the records before and after it commit."""
    await feed(rs_redis, fast_options, "in", [("k", "x"), ("k", "boom"), ("j", "y")])
    await topic(rs_redis, fast_options, "out")

    def remember(ctx: ProcessContext, value: str) -> None:
        ctx.state("last").set(value)
        ctx.emit(value)

    def explode(value: str) -> str:
        if value == "boom-2":
            raise ValueError("boom")
        return value

    job = Job("bad2")
    job.source("in", value_type=str).process(remember, stores=["last"]).flat_map(
        lambda v: [f"{v}-1", f"{v}-2"]
    ).map(explode).to("out")
    runtime = RuntimeOptions(batch_size=50, max_attempts=1)
    async with running_job(job, rs_redis, fast_options, runtime) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    assert sorted(v for _, v in await read(rs_redis, fast_options, "out")) == [
        "x-1", "x-2", "y-1", "y-2",
    ]  # fmt: skip
    assert await StateReader(rs_redis, fast_options).items("bad2", "last") == {"k": "x", "j": "y"}
    (letter,) = await DeadLetters(rs_redis, fast_options).list("in")
    assert (letter.key, letter.reason, letter.attempts, letter.error) == (
        "k", "max_attempts", 1, "boom",
    )  # fmt: skip


def test_stage_ids_stay_unique_when_a_stage_is_named() -> None:
    """A named key_by stage takes an id a default would take later. Fails on 7a4374f: the next
    source gets the same id (two stages, one group name), a later key_by is refused."""
    job = Job("m")
    job.source("a").key_by(str, name="s2").to("x")
    job.source("b").to("y")
    groups = [s.group for s in job.stages]
    assert len(set(groups)) == len(groups), groups
    other = Job("n")
    other.source("a").key_by(str, name="s2").key_by(str).to("x")  # no name given: no clash
    assert len({s.group for s in other.stages}) == 3
