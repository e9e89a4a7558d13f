"""Failover does not depend on state size: with 1,000,000 keys of word-count state in Redis (and,
for comparison, with none), a job process killed with SIGKILL is replaced by another one whose
partitions process again within the lease TTL plus two rebalance intervals (plus slack for
starting a process on a busy machine). The new owner restores nothing: a preloaded count goes on
from its stored value. ``pytest -s`` prints the measured times."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from redis_streaming import Admin, Keys, MQOptions, Producer, ProducerRecord, partition_for_key
from redis_streaming.state.codec import encode, encode_key
from redis_streaming.testing import RedisServer, client_from_url
from tests.helpers import FAST, fast_mq, wait_until
from tests.runtime.wordcount_procs import job_env, kill, read_outputs, start, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PARTITIONS = 12
SLACK_S = 5.0  # a Python process starting (imports) on a 2-core machine shared with the test


def preloaded(n: int, keys: int) -> int:
    """The count stored for word ``p<n>`` before the job runs, when ``keys`` were preloaded."""
    return n % 1000 + 1 if n < keys else 0


async def _state_topic(redis: Any, namespace: str) -> str:
    """The input topic of the stage that owns the ``counts`` store, read from the name of a
    state hash the job has written (``<ns>:state:{<topic>:<i>}:wordcount:counts``)."""
    async for key in redis.scan_iter(match=f"{namespace}:state:*:wordcount:counts", count=1000):
        tagged: str = key.decode().split("{", 1)[1].split("}", 1)[0]
        return tagged.rsplit(":", 1)[0]
    raise AssertionError("no state hash of wordcount:counts")


async def _preload(redis: Any, namespace: str, topic: str, keys: int) -> None:
    """``keys`` counts (``p0``, ``p1``, ...) in the partitions' state hashes, as the job would
    have stored them."""
    fields: list[dict[bytes, bytes]] = [{} for _ in range(PARTITIONS)]
    for n in range(keys):
        word = f"p{n}"
        fields[partition_for_key(word, PARTITIONS)][encode_key(word)] = encode(preloaded(n, keys))
    pipe = redis.pipeline(transaction=False)
    for p, mapping in enumerate(fields):
        key = f"{namespace}:state:{{{topic}:{p}}}:wordcount:counts"
        items = list(mapping.items())
        for i in range(0, len(items), 10_000):
            pipe.hset(key, mapping=dict(items[i : i + 10_000]))
            if len(pipe) >= 10:
                await pipe.execute()
    await pipe.execute()
    sizes = [int(await redis.hlen(f"{namespace}:state:{{{topic}:{p}}}:wordcount:counts"))
             for p in range(PARTITIONS)]  # fmt: skip
    assert sum(sizes) >= keys


def _one_word_per_partition(start: int) -> dict[int, int]:
    """For each partition, a preloaded word ``p<n>`` (``n >= start``) that lands on it."""
    chosen: dict[int, int] = {}
    n = start
    while len(chosen) < PARTITIONS:
        chosen.setdefault(partition_for_key(f"p{n}", PARTITIONS), n)
        n += 1
    return chosen


async def _counted(redis: Any, keys: Keys, expected: dict[str, int]) -> bool:
    outputs = await read_outputs(redis, keys, "word-counts", PARTITIONS)
    return all(any(o["count"] == c for o in outputs.get(w, [])) for w, c in expected.items())


@pytest.mark.parametrize("state_keys", [1_000_000, 0])
async def test_partitions_process_again_within_the_lease_ttl_after_a_kill(
    rs_server: RedisServer, rs_namespace: str, procs: list[subprocess.Popen[bytes]], state_keys: int
) -> None:
    options: MQOptions = fast_mq(rs_namespace)
    keys = Keys(rs_namespace)
    redis = client_from_url(rs_server.url)
    try:
        admin = Admin(redis, options)
        for topic in ("sentences", "word-counts"):
            await admin.create_topic(topic, PARTITIONS)
        producer = Producer(redis, options)
        env = job_env(rs_server.url, rs_namespace)
        first = await start(procs, env)
        await producer.send("sentences", {"text": "warm Up"})
        await wait_until(lambda: _counted(redis, keys, {"up": 1}), 20, "the first output")
        began = time.monotonic()
        await _preload(redis, rs_namespace, await _state_topic(redis, rs_namespace), state_keys)
        print(f"\npreloaded {state_keys} keys of state in {time.monotonic() - began:.1f} s")

        before = _one_word_per_partition(0)  # the first process counts on from stored values
        await producer.send("sentences", {"text": " ".join(f"p{n}" for n in before.values())})
        expected = {f"p{n}": preloaded(n, state_keys) + 1 for n in before.values()}
        await wait_until(lambda: _counted(redis, keys, expected), 20, "counts from stored state")

        kill(first)
        killed = time.monotonic()
        second = await start(procs, env)
        started = time.monotonic() - killed
        # One sentence into each input partition, its words on every partition of the store.
        after = _one_word_per_partition(max(before.values()) + 1)
        words = [f"p{n}" for n in after.values()]
        await producer.send_many(
            "sentences",
            [ProducerRecord({"text": " ".join(words)}, partition=p) for p in range(PARTITIONS)],
        )
        expected = {f"p{n}": preloaded(n, state_keys) + PARTITIONS for n in after.values()}
        await wait_until(lambda: _counted(redis, keys, expected), 60, "every partition again")
        failover = time.monotonic() - killed
        ttl, interval = FAST["mq"]["lease_ttl_s"], FAST["mq"]["rebalance_interval_s"]
        print(
            f"failover with {state_keys} keys of state: every partition processed again "
            f"{failover:.2f} s after the kill (the new process was ready after {started:.2f} s; "
            f"lease TTL {ttl} s, rebalance interval {interval} s)"
        )
        assert failover <= ttl + 2 * interval + SLACK_S
        assert second.poll() is None
        assert await stop(procs) == [0]
    finally:
        await redis.aclose()
