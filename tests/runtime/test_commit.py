"""The commit protocol (runtime/commit.py and scripts/commit.lua, task_claim.lua), driven by hand
on a single server and on a 3-master cluster: a fenced commit changes nothing, a batch commits
once, and a commit writes state, appends outputs, acknowledges and moves the frontier at once."""

from __future__ import annotations

from typing import Any

import pytest

from redis_streaming import Admin, Job, MQOptions, partition_for_key
from redis_streaming.cluster import is_cluster
from redis_streaming.runtime.commit import Committer
from redis_streaming.runtime.context import BatchRun
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.state.batch import BatchState
from redis_streaming.state.cache import StateCache
from redis_streaming.state.codec import decode, encode, encode_key

pytestmark = pytest.mark.cluster

ME, OTHER = "consumer-a", "consumer-b"


class Task:
    """Partition 0 of stage ``c.s0`` (topic ``in`` -> state ``st`` -> topic ``out``): its
    entries read by ``ME`` (pending), its lease held by ``ME``, and a committer."""

    def __init__(self, redis: Any, options: MQOptions) -> None:
        self.redis = redis
        self.keys = RuntimeKeys(options.namespace)
        job = Job("c")
        job.source("in").stateful_map(lambda s, v: (v, v), name="st", ttl=60).to("out")
        self.stage = job.stages[0]
        self.options = options
        self.stream = self.keys.mq.stream("in", 0)
        self.lease = self.keys.mq.lease("in", 0, "c.s0")
        self.task = self.keys.task("in", 0, "c.s0")
        self.hash, self.ttl = self.keys.state("in", 0, "c", "st"), self.keys.ttl("in", 0, "c", "st")
        self.ids: list[bytes] = []
        self.committer: Committer

    async def setup(self, entries: int = 3) -> Task:
        out = await Admin(self.redis, self.options).create_topic("out", 2)
        self.committer = Committer(
            self.keys, self.stage, 0, ME, {"out": out}, outbox=is_cluster(self.redis)
        )
        await self.redis.xgroup_create(self.stream, "c.s0", id="0", mkstream=True)
        for n in range(entries):
            await self.redis.xadd(self.stream, {"n": str(n)})
        read = await self.redis.xreadgroup("c.s0", ME, {self.stream: ">"})
        self.ids = [eid for _, entries in read for eid, _ in entries]
        await self.redis.set(self.lease, ME)
        return self

    def batch(self, value: Any = "v") -> BatchRun:
        """A batch run writing ``value`` for key ``k`` and one output keyed ``k``."""
        run = BatchRun(BatchState(StateCache(100)), 1 << 20)
        run.state.set("st", encode_key("k"), value, 60_000)
        run.output("out", "k", value, 1, internal=False)
        return run

    async def outputs(self) -> int:
        """Outputs appended: to ``out`` (the key's partition), or to the outbox on a cluster."""
        outbox = self.committer.outbox
        if outbox is not None:
            return int(await self.redis.xlen(outbox))
        return int(await self.redis.xlen(self.keys.mq.stream("out", partition_for_key("k", 2))))

    async def snapshot(self) -> tuple[Any, ...]:
        """Everything a commit may change."""
        pending = await self.redis.xpending_range(self.stream, "c.s0", "-", "+", 100)
        return (
            await self.redis.hgetall(self.hash),
            await self.redis.zrange(self.ttl, 0, -1),
            await self.outputs(),
            [p["message_id"] for p in pending],
            await self.redis.hgetall(self.task),
        )


@pytest.fixture
async def task(rs_redis: Any, fast_options: MQOptions) -> Task:
    return await Task(rs_redis, fast_options).setup()


async def test_ok_writes_state_appends_outputs_acks_and_sets_the_frontier(task: Task) -> None:
    epoch = await task.committer.claim(task.redis)
    assert epoch == 1
    result = await task.committer.commit(task.redis, epoch, task.ids, task.batch(7))
    assert (result.status, result.store_keys) == ("OK", {"st": 1})
    assert {decode(k): decode(v) for k, v in (await task.redis.hgetall(task.hash)).items()} == {
        "k": 7
    }
    assert await task.redis.zrange(task.ttl, 0, -1) == [encode_key("k")]
    assert await task.outputs() == 1
    assert await task.redis.xpending_range(task.stream, "c.s0", "-", "+", 100) == []
    record = await task.redis.hgetall(task.task)
    assert record[b"frontier"] == task.ids[-1]
    assert int(record[b"committed_ms"]) > 0
    assert record[b"epoch"] == b"1"


async def test_a_batch_commits_once_then_already(task: Task) -> None:
    epoch = await task.committer.claim(task.redis)
    assert (await task.committer.commit(task.redis, epoch, task.ids, task.batch())).status == "OK"
    before = await task.snapshot()
    again = await task.committer.commit(task.redis, epoch, task.ids, task.batch("other"))
    assert again.status == "ALREADY"
    assert await task.snapshot() == before
    assert await task.outputs() == 1


async def test_a_tick_sent_again_after_it_committed_changes_nothing(task: Task) -> None:
    """A commit of no entries (timers fired on an idle partition) counts itself: the same tick
    sent twice (redis-py resends a command after a lost connection) appends its outputs once."""
    epoch = await task.committer.claim(task.redis)
    assert (await task.committer.commit(task.redis, epoch, [], task.batch())).status == "OK"
    before = await task.snapshot()
    again = await task.committer.commit(task.redis, epoch, [], task.batch())
    assert again.status == "ALREADY"
    assert await task.snapshot() == before
    assert await task.outputs() == 1
    task.committer.ticks += 1  # what the task does after a tick committed
    assert (await task.committer.commit(task.redis, epoch, [], task.batch())).status == "OK"
    assert await task.outputs() == 2


async def test_a_commit_is_fenced_when_another_consumer_holds_the_lease(task: Task) -> None:
    epoch = await task.committer.claim(task.redis)
    await task.redis.set(task.lease, OTHER)
    before = await task.snapshot()
    result = await task.committer.commit(task.redis, epoch, task.ids, task.batch())
    assert result.status == "FENCED"
    assert await task.snapshot() == before
    assert before[2:4] == (0, task.ids)  # no outputs, every entry still pending
    assert await task.committer.claim(task.redis) == 0  # no epoch without the lease


async def test_a_second_claim_by_the_same_consumer_fences_the_first_epoch(task: Task) -> None:
    """A restarted process reusing its consumer id: its old task cannot commit any more."""
    first = await task.committer.claim(task.redis)
    second = await task.committer.claim(task.redis)
    assert second == first + 1
    before = await task.snapshot()
    stale = await task.committer.commit(task.redis, first, task.ids, task.batch("stale"))
    assert stale.status == "FENCED"
    assert await task.snapshot() == before
    assert (await task.committer.commit(task.redis, second, task.ids, task.batch())).status == "OK"
    assert await task.outputs() == 1


async def test_a_commit_deletes_and_sweeps_expired_keys(task: Task) -> None:
    """A delete removes the key and its TTL entry; keys whose TTL passed go in any commit."""
    epoch = await task.committer.claim(task.redis)
    await task.redis.hset(task.hash, mapping={encode_key("old"): encode(1), encode_key("k"): b"x"})
    await task.redis.hset(task.hash, encode_key("kept"), encode(2))
    await task.redis.zadd(task.ttl, {encode_key("old"): 1, encode_key("k"): 1})
    await task.redis.zadd(task.ttl, {encode_key("kept"): 2**50})
    run = BatchRun(BatchState(StateCache(100)), 1 << 20)
    run.state.delete("st", encode_key("k"))
    assert (await task.committer.commit(task.redis, epoch, task.ids[:1], run)).status == "OK"
    assert await task.redis.hkeys(task.hash) == [encode_key("kept")]
    assert await task.redis.zrange(task.ttl, 0, -1) == [encode_key("kept")]


async def test_the_reported_key_count_is_what_the_commit_left(task: Task) -> None:
    """``store_keys`` (the status's ``store_keys``) counts the keys after the commit's sweep.
    Fails on 7a4374f: commit.lua takes HLEN before sweeping, so it counts expired keys."""
    epoch = await task.committer.claim(task.redis)
    await task.redis.hset(task.hash, encode_key("old"), encode(1))
    await task.redis.zadd(task.ttl, {encode_key("old"): 1})
    result = await task.committer.commit(task.redis, epoch, task.ids[:1], task.batch())
    assert await task.redis.hkeys(task.hash) == [encode_key("k")]
    assert result.store_keys == {"st": 1}
