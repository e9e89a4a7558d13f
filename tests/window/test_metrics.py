"""The window instruments: windows opened and closed and late records, counted once per
committed batch with the job's and stage's labels, agree with status() and the reference."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from redis_streaming import Job, MQOptions, windows
from redis_streaming.metrics import Metrics
from tests.metrics.test_instruments import values
from tests.runtime.support import wait_idle
from tests.window import reference as ref
from tests.window.support import RUNTIME, aggregation, feed, generate, source, topics

LABELS = frozenset({"job": "metered", "stage": "s0"}.items())


def by_stage(reader: InMemoryMetricReader, name: str) -> int:
    found = values(reader, name)
    assert all(labels >= LABELS for labels in found), found
    return sum(found.values())


async def test_windows_opened_closed_and_late_records_are_counted(
    rs_redis: Any, fast_options: MQOptions
) -> None:
    recs = generate(21, 60, step=90, jitter=3000, far=10_000)
    exp = ref.hopping(recs, 1000, 1000, 300, 0)
    opened = len({(k, s) for k, s, _, _ in exp.current})
    assert exp.late
    assert exp.final
    reader = InMemoryMetricReader()
    metrics = Metrics(MeterProvider(metric_readers=[reader]).get_meter("test"))
    await topics(rs_redis, fast_options, "final")
    await feed(rs_redis, fast_options, "in", recs)
    job = Job("metered", partitions=1)
    (source(job).window(windows.tumbling(1), grace=0.3)
        .aggregate(**aggregation()).final().to("final"))  # fmt: skip
    handle = await job.run(rs_redis, fast_options, runtime=RUNTIME, metrics=metrics)
    try:
        await wait_idle(rs_redis, fast_options, handle)
        status = handle.status().stages[0]
    finally:
        await handle.stop()
    assert (status.windows_opened, status.windows_closed, status.late_records) == (
        opened, len(exp.final), len(exp.late),
    )  # fmt: skip
    assert by_stage(reader, "redis_streaming.runtime.windows.opened") == opened
    assert by_stage(reader, "redis_streaming.runtime.windows.closed") == len(exp.final)
    assert by_stage(reader, "redis_streaming.runtime.late_records") == len(exp.late)
