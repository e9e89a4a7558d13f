"""What the runtime's tests share: topics with inputs, a job running for the test's duration,
reading a topic's outputs (every partition) and waiting until a job has committed its input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from redis_streaming import Admin, Job, JobHandle, MQOptions, Producer, RuntimeOptions
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.topics import TopicStore
from redis_streaming.mq.wire.codec import decode_payload, parse_fields
from tests.helpers import wait_until

# Small batches and retries keep the tests short; the protocol is the same.
RUNTIME = RuntimeOptions(batch_size=50, retry_backoff_ms=10, forward_interval_ms=20)
Out = tuple[str | None, Any]  # (key, decoded value) of an output entry


async def feed(
    redis: Any,
    options: MQOptions,
    topic: str,
    values: Iterable[Any | tuple[str, Any]],
    *,
    partitions: int = 2,
) -> None:
    """Create ``topic`` and append ``values`` (a ``(key, value)`` pair is sent keyed)."""
    await Admin(redis, options).create_topic(topic, partitions)
    await send(redis, options, topic, values)


async def send(
    redis: Any, options: MQOptions, topic: str, values: Iterable[Any | tuple[str, Any]]
) -> None:
    """Append ``values`` to the existing ``topic`` (a ``(key, value)`` pair is sent keyed)."""
    producer = Producer(redis, options)
    for item in values:
        if isinstance(item, tuple):
            await producer.send(topic, item[1], key=item[0])
        else:
            await producer.send(topic, item)


async def topic(redis: Any, options: MQOptions, name: str, partitions: int = 2) -> None:
    """Create ``name`` (an output topic must exist before a job writes to it)."""
    await Admin(redis, options).create_topic(name, partitions)


async def read_partitions(
    redis: Any, options: MQOptions, name: str, partitions: int
) -> dict[int, list[Out]]:
    """The ``(key, value)`` of each entry of each partition of topic ``name``, in order."""
    keys = Keys(options.namespace)
    found: dict[int, list[Out]] = {}
    for p in range(partitions):
        entries = await redis.xrange(keys.stream(name, p))
        found[p] = [_decoded(fields) for _, fields in entries]
    return found


async def read(redis: Any, options: MQOptions, name: str, partitions: int = 2) -> list[Out]:
    """Every ``(key, value)`` of topic ``name``, partition after partition."""
    parts = await read_partitions(redis, options, name, partitions)
    return [out for p in sorted(parts) for out in parts[p]]


def _decoded(fields: dict[bytes, bytes]) -> Out:
    parsed = parse_fields(fields)
    return parsed.key, decode_payload(parsed.raw, parsed.content_type)


async def wait_outputs(
    redis: Any, options: MQOptions, name: str, count: int, partitions: int = 2
) -> list[Out]:
    """Wait until topic ``name`` has ``count`` entries; returns them (see :func:`read`)."""
    found: list[Out] = []

    async def enough() -> bool:
        nonlocal found
        found = await read(redis, options, name, partitions)
        return len(found) >= count

    await wait_until(enough, what=f"{count} entries in {name}")
    return found


async def wait_idle(redis: Any, options: MQOptions, handle: JobHandle) -> None:
    """Wait until every stage of ``handle``'s job has committed all its input (no entry of its
    input partitions unread or pending for its group) and, on a cluster, forwarded it."""
    keys = Keys(options.namespace)
    store = TopicStore(redis, options)

    async def idle() -> bool:
        for shared in handle.stages:
            stage = shared.stage
            meta = await store.get(stage.topic)
            for p in range(meta.partitions if meta else 0):
                stream = keys.stream(stage.topic, p)
                groups = await redis.xinfo_groups(stream) if await redis.exists(stream) else []
                mine = [g for g in groups if g["name"] == stage.group.encode()]
                if not mine or mine[0]["pending"] or mine[0]["lag"] != 0:
                    return False
            for task in list(shared.tasks.values()):
                if task.forwarder is not None and await task.forwarder.forwarder.backlog():
                    return False
        return True

    await wait_until(idle, what=f"job {handle.job.name} idle")


@asynccontextmanager
async def running_job(
    job: Job,
    redis: Any,
    options: MQOptions,
    runtime: RuntimeOptions = RUNTIME,
    consumer_id: str | None = None,
) -> AsyncIterator[JobHandle]:
    """``job`` running for the block; stopped after it, also when the test fails."""
    handle = await job.run(redis, options, runtime=runtime, consumer_id=consumer_id)
    try:
        yield handle
    finally:
        await handle.stop()
