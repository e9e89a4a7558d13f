"""The Redis sink (redis_streaming.sink.RedisSink) on a single server and on a 3-master
cluster: records become hash, set, sorted-set and string upserts (a None value deletes), applied
with the batch's commit: once, in commit order, never after a commit that did not happen, and on
a cluster through the outbox (one high-water mark per hash tag), so a stale forward cannot undo
a newer write."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from redis_streaming import Job, MQOptions, RedisSink
from redis_streaming._redis.lua import LuaScript
from redis_streaming.cluster import is_cluster
from redis_streaming.runtime.commit import Committer
from redis_streaming.runtime.context import BatchRun
from redis_streaming.runtime.forwarder import OutboxForwarder
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.state.batch import BatchState
from redis_streaming.state.cache import StateCache
from tests.runtime.support import feed, running_job, wait_idle

pytestmark = pytest.mark.cluster
FORWARD = LuaScript("redis_streaming.runtime.scripts", "forward")

WORDS = [f"w{n % 7}" for n in range(60)] + ["gone", "gone"]


def count(state: int | None, word: str) -> tuple[int, list[Any]]:
    return (state or 0) + 1, [word, (state or 0) + 1]


def value(rec: Any) -> int | None:
    """The count, or None (delete) for the second "gone"."""
    word, n = rec.value
    return None if word == "gone" and n == 2 else n


async def test_records_become_upserts_of_each_kind(rs_redis: Any, fast_options: MQOptions) -> None:
    """A word count written four ways; the word "gone" is deleted again by its second record."""
    ns = fast_options.namespace
    await feed(rs_redis, fast_options, "words", [(w, w) for w in WORDS])
    job = Job("wc", partitions=2)
    counts = job.source("words", value_type=str).stateful_map(count, name="counts")
    counts.sink(RedisSink("hash", key=f"{ns}-counts", value=value))
    counts.sink(RedisSink("zset", key=f"{ns}-rank", value=value, score=lambda r: value(r) * 1.5))
    counts.sink(RedisSink("set", key=f"{ns}:{{words}}:seen", value=value))
    counts.sink(RedisSink("string", key=lambda r: f"{ns}-word:{r.key}", value=value))
    expected = {w: c for w, c in Counter(WORDS).items() if w != "gone"}
    async with running_job(job, rs_redis, fast_options) as handle:
        await wait_idle(rs_redis, fast_options, handle)
    hash_ = await rs_redis.hgetall(f"{ns}-counts")
    assert {k.decode(): int(v) for k, v in hash_.items()} == expected
    rank = await rs_redis.zrange(f"{ns}-rank", 0, -1, withscores=True)
    assert {k.decode(): s for k, s in rank} == {w: c * 1.5 for w, c in expected.items()}
    assert {m.decode() for m in await rs_redis.smembers(f"{ns}:{{words}}:seen")} == set(expected)
    for w, c in expected.items():
        assert await rs_redis.get(f"{ns}-word:{w}") == str(c).encode()
    assert not await rs_redis.exists(f"{ns}-word:gone")


class Task:
    """Partition 0 of stage ``c.s0`` of a job with a Redis sink: three entries read, the lease
    held, and a committer."""

    def __init__(self, redis: Any, options: MQOptions) -> None:
        self.redis = redis
        self.keys = RuntimeKeys(options.namespace)
        self.target = f"{options.namespace}-target"
        job = Job("c")
        job.source("in").sink(RedisSink("string", key=self.target))
        self.stage = job.stages[0]
        self.stream = self.keys.mq.stream("in", 0)
        self.ids: list[bytes] = []
        self.committer = Committer(self.keys, self.stage, 0, "me", {}, outbox=is_cluster(redis))

    async def setup(self) -> Task:
        await self.redis.xgroup_create(self.stream, "c.s0", id="0", mkstream=True)
        for n in range(3):
            await self.redis.xadd(self.stream, {"n": str(n)})
        read = await self.redis.xreadgroup("c.s0", "me", {self.stream: ">"})
        self.ids = [eid for _, entries in read for eid, _ in entries]
        await self.redis.set(self.keys.mq.lease("in", 0, "c.s0"), "me")
        return self

    def batch(self, *values: bytes) -> BatchRun:
        run = BatchRun(BatchState(StateCache(10)), 1 << 20)
        run.writes += [("SET", self.target, [v]) for v in values]
        return run

    async def settle(self) -> None:
        """On a cluster, forward the outbox (what the task's forwarder does)."""
        if self.committer.outbox is not None:
            await self.forwarder().forward()

    def forwarder(self) -> OutboxForwarder:
        return OutboxForwarder(self.redis, self.keys, "c", "c.s0", "in", 0)


@pytest.fixture
async def task(rs_redis: Any, fast_options: MQOptions) -> Task:
    return await Task(rs_redis, fast_options).setup()


async def test_sink_writes_apply_once_with_their_commit(task: Task) -> None:
    epoch = await task.committer.claim(task.redis)
    assert (await task.committer.commit(task.redis, 0, task.ids, task.batch(b"x"))).status == (
        "FENCED"
    )
    await task.settle()
    assert await task.redis.get(task.target) is None  # a fenced commit writes nothing
    run = task.batch(b"a", b"b")
    assert (await task.committer.commit(task.redis, epoch, task.ids, run)).status == "OK"
    await task.settle()
    assert await task.redis.get(task.target) == b"b"  # in order
    await task.redis.set(task.target, b"changed since")
    again = await task.committer.commit(task.redis, epoch, task.ids, task.batch(b"c"))
    assert again.status == "ALREADY"
    await task.settle()
    assert await task.redis.get(task.target) == b"changed since"


async def test_a_stale_forward_does_not_undo_a_newer_write(task: Task) -> None:
    """Two forwarders (a zombie's and the new owner's): one applied the newer writes; the other
    then forwards the older entry it read before. The key keeps the newer value."""
    if task.committer.outbox is None:
        pytest.skip("the outbox exists on a cluster only")
    epoch = await task.committer.claim(task.redis)
    await task.committer.commit(task.redis, epoch, task.ids[:1], task.batch(b"old"))
    stale = await task.redis.xrange(task.committer.outbox)
    await task.committer.commit(task.redis, epoch, task.ids[1:], task.batch(b"new"))
    assert await task.forwarder().forward() == 2
    assert await task.redis.get(task.target) == b"new"
    hwm = task.keys.forwarded_to(task.target, "c")
    ((stale_id, fields),) = stale
    assert fields[b"rs_op"] == b"SET"
    args = [b"c.s0|in:0", 0, stale_id, b"SET", 3, 1, b"old"]  # as the stale forwarder sends it
    assert await FORWARD(task.redis, [hwm, hwm, task.target], args) == 0
    assert await task.redis.get(task.target) == b"new"
    marks = await task.redis.hgetall(hwm)
    assert list(marks) == [b"c.s0|in:0"]


async def test_a_write_to_a_key_of_another_type_fails_before_any_other_effect(
    task: Task,
) -> None:
    """WRONGTYPE: on a server the commit fails whole (nothing acknowledged); on a cluster the
    forward fails and keeps failing, the writes before it applied once."""
    await task.redis.set(task.target, "a string")
    epoch = await task.committer.claim(task.redis)
    run = task.batch()
    run.writes.append(("HSET", task.target, [b"f", b"x"]))
    if task.committer.outbox is None:
        with pytest.raises(Exception, match="WRONGTYPE"):
            await task.committer.commit(task.redis, epoch, task.ids, run)
        assert len(await task.redis.xpending_range(task.stream, "c.s0", "-", "+", 10)) == 3
        return
    assert (await task.committer.commit(task.redis, epoch, task.ids, run)).status == "OK"
    for _ in range(2):
        with pytest.raises(Exception, match="WRONGTYPE"):
            await task.forwarder().forward()
    assert await task.forwarder().backlog() == 1
