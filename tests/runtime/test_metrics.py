"""The runtime's instruments: records in and out, commits, batch sizes, dead letters, and the
state-keys gauge, recorded by a real job on the test server."""

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from redis_streaming import Job, MQOptions, Producer, RuntimeOptions
from redis_streaming.metrics import Metrics
from tests.helpers import wait_until
from tests.metrics.test_instruments import total, values


def _count(state: Any, value: Any) -> tuple[int, dict[str, Any]]:
    n = (state or 0) + 1
    return n, {"n": n}


async def test_a_job_records_its_commits_outputs_dead_letters_and_state_keys(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    reader = InMemoryMetricReader()
    metrics = Metrics(MeterProvider(metric_readers=[reader]).get_meter("test"))
    producer = Producer(rs_redis, fast_options)
    await producer.send_many("in", [{"k": f"k{i % 3}"} for i in range(9)])
    await rs_redis.xadd(
        f"{fast_options.namespace}:stream:{{in:0}}",
        {"payload": b"{not json", "content_type": "application/json"},
    )
    job = Job("metered", partitions=1)
    job.source("in", value_type=dict).key_by(lambda v: v["k"]).stateful_map(
        _count, name="counts"
    ).to("out")
    handle = await job.run(
        rs_redis, fast_options, runtime=RuntimeOptions(batch_size=50), metrics=metrics
    )
    try:

        async def done() -> bool:
            stages = handle.status().stages
            return stages[1].records_in == 9 and stages[0].records_in == 10

        await wait_until(done, timeout_s=20)
        # The tasks add their counts to the counters about twice a second.
        await wait_until(lambda: total(reader, "redis_streaming.runtime.records.in") == 19)
        out = values(reader, "redis_streaming.runtime.records.out")
        assert sum(n for labels, n in out.items() if ("stage", "s0") in labels) == 9
        assert sum(n for labels, n in out.items() if ("stage", "s1") in labels) == 9
        assert total(reader, "redis_streaming.runtime.batch.size") >= 2  # histogram counts
        dead = values(reader, "redis_streaming.runtime.dead_lettered")
        assert dead == {
            frozenset({"job": "metered", "stage": "s0", "reason": "undecodable"}.items()): 1
        }
        keys = values(reader, "redis_streaming.runtime.state.keys")
        assert sum(keys.values()) == 3
        assert all(("store", "counts") in labels for labels in keys)
    finally:
        await handle.stop()
