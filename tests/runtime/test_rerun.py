"""A batch that runs again after a function raised starts from the committed state: changes
a function made in place to a state object, and a failed record's writes, are not kept."""

from typing import Any

from redis_streaming import Job, MQOptions, Producer, ProducerRecord, RuntimeOptions, StateReader
from tests.helpers import wait_until


async def test_in_place_changes_of_a_failed_run_do_not_leak_into_the_rerun(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    failures = {"left": 1}

    def tally(state: Any, value: dict[str, Any]) -> tuple[Any, Any]:
        state = state or {"n": 0, "seen": []}
        state["n"] += 1  # changed in place: a rerun must not start from this object
        state["seen"].append(value["i"])
        if value["i"] == 2 and failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("fails once")
        return state, state["n"]

    await Producer(rs_redis, fast_options).send_many(
        "events", [ProducerRecord({"i": i}, key="one") for i in range(4)]
    )
    job = Job("rerun", partitions=1)
    job.source("events", value_type=dict).stateful_map(tally, name="tally").to("counts")
    runtime = RuntimeOptions(batch_size=10, max_attempts=2, retry_backoff_ms=10)
    async with await job.run(rs_redis, fast_options, runtime=runtime) as handle:
        await wait_until(lambda: handle.status().stages[0].records_in == 4, timeout_s=20)
    state = await StateReader(rs_redis, fast_options).items("rerun", "tally")
    assert state == {"one": {"n": 4, "seen": [0, 1, 2, 3]}}
    assert handle.status().stages[0].dead_lettered == 0


async def test_a_record_that_keeps_failing_is_undone_alone_and_the_rest_commits(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    def tally(state: Any, value: dict[str, Any]) -> tuple[Any, Any]:
        state = state or {"seen": []}
        state["seen"].append(value["i"])
        return state, value["i"]

    def check(i: int) -> int:  # raises after the record's state was written
        if i == 1:
            raise RuntimeError("always")
        return i

    await Producer(rs_redis, fast_options).send_many(
        "events", [ProducerRecord({"i": i}, key="one") for i in range(3)]
    )
    job = Job("undo", partitions=1)
    job.source("events", value_type=dict).stateful_map(tally, name="tally").map(check).to("out")
    runtime = RuntimeOptions(batch_size=10, max_attempts=2, retry_backoff_ms=10)
    async with await job.run(rs_redis, fast_options, runtime=runtime) as handle:
        await wait_until(lambda: handle.status().stages[0].records_in == 3, timeout_s=20)
    state = await StateReader(rs_redis, fast_options).items("undo", "tally")
    assert state == {"one": {"seen": [0, 2]}}
    assert handle.status().stages[0].dead_lettered == 1
