"""The source runner: records into partitions by key, each once; positions; lease; errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from redis_streaming import MQOptions
from redis_streaming.errors import InvalidArgument, SourceError
from redis_streaming.mq.producer import partition_for_key
from redis_streaming.source import POSITION_HEADER, SourceRecord, SourceRunner
from redis_streaming.source.appender import Appender
from redis_streaming.source.positions import decimal
from tests.helpers import fast_mq, wait_until
from tests.source.sources import ListSource, numbered, topic_entries

P = 4


@pytest.fixture
def options(rs_namespace: str) -> MQOptions:
    return fast_mq(rs_namespace, default_partitions=P)


def values(parts: list[list[dict[str, str]]]) -> list[int]:
    return sorted(json.loads(e["payload"])["i"] for part in parts for e in part)


async def run_to_end(runner: SourceRunner, last: str) -> None:
    runner.start()
    try:
        await wait_until(lambda: runner.position == last, 10, f"position {last}")
    finally:
        await runner.stop()


@pytest.mark.cluster
async def test_records_reach_their_key_partition_once_in_position_order(
    rs_redis: Any, options: MQOptions
) -> None:
    source = ListSource(numbered(250))
    runner = SourceRunner(rs_redis, options, source, "src-out", "s1", batch_size=40)
    await run_to_end(runner, decimal(249))
    parts = await topic_entries(rs_redis, options.namespace, "src-out", P)
    assert values(parts) == list(range(250))
    for p, entries in enumerate(parts):
        positions = [json.loads(e["headers"])[POSITION_HEADER] for e in entries]
        assert positions == sorted(positions)
        assert all(partition_for_key(e["key"], P) == p for e in entries)
    assert source.acks[-1] == decimal(249)
    assert await rs_redis.hget(f"{options.namespace}:source:{{src:s1}}", "position") == (
        decimal(249).encode()
    )


@pytest.mark.cluster
async def test_records_appended_before_a_crash_are_not_appended_again(
    rs_redis: Any, options: MQOptions
) -> None:
    records = numbered(100)
    # A runner that appended the first 60 and died before storing its position:
    await Appender(rs_redis, options, "src-out", "s1").append(records[:60])
    runner = SourceRunner(rs_redis, options, ListSource(records), "src-out", "s1")
    await run_to_end(runner, decimal(99))
    assert values(await topic_entries(rs_redis, options.namespace, "src-out", P)) == list(
        range(100)
    )
    assert runner.status().records_appended == 40


async def test_a_restart_resumes_after_the_stored_position(
    rs_redis: Any, options: MQOptions
) -> None:
    records = numbered(30)
    await run_to_end(
        SourceRunner(rs_redis, options, ListSource(records[:10]), "o", "s"), decimal(9)
    )
    source = ListSource(records)
    await run_to_end(SourceRunner(rs_redis, options, source, "o", "s"), decimal(29))
    assert source.opened == [(decimal(9), None)]
    assert values(await topic_entries(rs_redis, options.namespace, "o", P)) == list(range(30))


async def test_a_second_runner_stands_by_and_takes_over_without_duplicates(
    rs_redis: Any, options: MQOptions
) -> None:
    first = SourceRunner(rs_redis, options, ListSource(numbered(50)), "o", "s", owner_id="a")
    second_source = ListSource(numbered(80))
    second = SourceRunner(rs_redis, options, second_source, "o", "s", owner_id="b")
    first.start()
    await wait_until(lambda: first.position == decimal(49), 10, "first done")
    second.start()
    try:
        await wait_until(lambda: second.status().state == "standby", 5, "standby")
        assert second_source.opened == []
        await first.stop()
        await wait_until(lambda: second.position == decimal(79), 10, "takeover")
    finally:
        await second.stop()
    assert values(await topic_entries(rs_redis, options.namespace, "o", P)) == list(range(80))


async def test_a_runner_whose_lease_was_taken_stores_no_position(
    rs_redis: Any, options: MQOptions
) -> None:
    source = ListSource(numbered(5))
    runner = SourceRunner(rs_redis, options, source, "o", "s", owner_id="a")
    await run_to_end(runner, decimal(4))
    runner = SourceRunner(rs_redis, options, ListSource(numbered(9)), "o", "s", owner_id="a")
    runner.start()
    try:
        await wait_until(lambda: runner.position == decimal(8), 10, "running")
        lease = f"{options.namespace}:srclease:{{src:s}}"
        await rs_redis.set(lease, "intruder", px=10000)
        runner.source.records += numbered(3, start=9)  # type: ignore[attr-defined]
        await wait_until(lambda: runner.status().state == "standby", 5, "standby")
    finally:
        await runner.stop()
    stored = await rs_redis.hget(f"{options.namespace}:source:{{src:s}}", "position")
    assert stored == decimal(8).encode()


async def test_a_passing_error_is_retried_and_nothing_is_lost(
    rs_redis: Any, options: MQOptions
) -> None:
    source = ListSource(numbered(20), fail_reads=2)
    runner = SourceRunner(rs_redis, options, source, "o", "s")
    await run_to_end(runner, decimal(19))
    assert len(source.opened) == 3
    assert source.closed >= 2
    assert runner.status().last_error is None
    assert values(await topic_entries(rs_redis, options.namespace, "o", P)) == list(range(20))


async def test_a_source_error_stops_the_runner_with_it(rs_redis: Any, options: MQOptions) -> None:
    source = ListSource(numbered(3))
    source.fatal = "replication slot 'x' was dropped"
    runner = SourceRunner(rs_redis, options, source, "o", "s")
    runner.start()
    with pytest.raises(SourceError, match="dropped"):
        await asyncio.wait_for(runner.wait(), 15)
    assert runner.status().state == "failed"
    await runner.stop()


async def test_positions_that_do_not_increase_are_a_clear_error(
    rs_redis: Any, options: MQOptions
) -> None:
    records = [SourceRecord(decimal(2), 1, "a"), SourceRecord(decimal(1), 2, "a")]
    runner = SourceRunner(rs_redis, options, ListSource(records), "o", "s")
    runner.start()
    with pytest.raises(InvalidArgument, match="must increase"):
        await asyncio.wait_for(runner.wait(), 15)
    await runner.stop()


async def test_a_record_that_cannot_be_encoded_goes_to_the_dead_letters(
    rs_redis: Any, rs_namespace: str
) -> None:
    options = fast_mq(rs_namespace, default_partitions=P, max_payload_bytes=100)
    records = [
        SourceRecord(decimal(0), {"i": 0}, "a"),
        SourceRecord(decimal(1), {"i": 1, "big": "x" * 200}, "a"),
        SourceRecord(decimal(2), {"i": 2}, "a", error="column v: not a number"),
        SourceRecord(decimal(3), {"i": 3}, "a"),
    ]
    await run_to_end(SourceRunner(rs_redis, options, ListSource(records), "o", "s"), decimal(3))
    assert values(await topic_entries(rs_redis, rs_namespace, "o", P)) == [0, 3]
    dlq = await rs_redis.xrange(f"{rs_namespace}:dlq:{{o}}")
    reasons = [(f[b"dlq_origin_id"], f[b"dlq_reason"], f[b"dlq_error"]) for _, f in dlq]
    assert [r[0] for r in reasons] == [decimal(1).encode(), decimal(2).encode()]
    assert all(r[1] == b"undecodable" for r in reasons)
    assert b"max_payload_bytes" in reasons[0][2]
    assert b"not a number" in reasons[1][2]


def test_a_bad_runner_configuration_is_refused_before_io(options: MQOptions) -> None:
    with pytest.raises(InvalidArgument):
        SourceRunner(None, options, object(), "o", "s")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        SourceRunner(None, options, ListSource([]), "o", "bad name")
    with pytest.raises(InvalidArgument):
        SourceRunner(None, options, ListSource([]), "o", "s", batch_size=0)
