"""What the join tests share: writing keyed entries with a chosen event time (the wire
format's ``ts``, as any producer may set it), waiting until a stage has committed a number of
entries, and reading a job's outputs back by record id."""

from __future__ import annotations

from typing import Any

from redis_streaming import Admin, JobHandle, MQOptions, RuntimeOptions, StageStatus
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.producer import partition_for_key
from redis_streaming.mq.wire.codec import encode_payload, entry_args
from tests.helpers import wait_until
from tests.join.reference import Entry, Round
from tests.runtime.support import read

# Small batches cut through every round; the protocol is the same as with the default.
RUNTIME = RuntimeOptions(batch_size=4, retry_backoff_ms=10, forward_interval_ms=20)


async def create(redis: Any, options: MQOptions, **topics: int) -> None:
    """Create each topic with its partition count (``orders=3``)."""
    admin = Admin(redis, options)
    for name, partitions in topics.items():
        await admin.create_topic(name, partitions)


async def append(
    redis: Any, options: MQOptions, topic: str, partitions: int, entries: list[Entry]
) -> None:
    """Append ``entries`` to ``topic`` in order, each in its key's partition with its ``ts``."""
    keys = Keys(options.namespace)
    for key, payload, ts in entries:
        raw, content_type = encode_payload(payload)
        stream = keys.stream(topic, partition_for_key(key, partitions))
        await redis.execute_command(
            "XADD", stream, "*", *entry_args(raw, content_type, key, None, ts)
        )


def stage_of(handle: JobHandle, topic: str) -> StageStatus:
    """The status of the stage of ``handle``'s job that reads ``topic``."""
    (found,) = [s for s in handle.status().stages if s.topic == topic]
    return found


async def wait_committed(handle: JobHandle, topic: str, count: int) -> None:
    """Wait until the stage reading ``topic`` has committed ``count`` entries in all."""
    await wait_until(
        lambda: stage_of(handle, topic).records_in >= count,
        what=f"{count} entries of {topic} committed",
    )
    assert stage_of(handle, topic).records_in == count


async def by_id(redis: Any, options: MQOptions, topic: str, partitions: int) -> dict[int, Any]:
    """The outputs of ``topic`` by the ``id`` of the stream record each came from (from the
    first element of a default joiner's pair, else the output's own ``id``); each id once."""
    found: dict[int, Any] = {}
    for key, value in await read(redis, options, topic, partitions):
        record = value[0] if isinstance(value, list) else value
        assert record["id"] not in found, f"record {record['id']} joined twice"
        assert key == record["customer"], "the output keeps the record's key"
        found[record["id"]] = value
    return found


async def play(
    redis: Any, options: MQOptions, handle: JobHandle, plan: list[Round],
    table: tuple[str, int], stream: tuple[str, int],
) -> None:  # fmt: skip
    """Send each round: its updates to the ``(topic, partitions)`` ``table``; once the table has
    committed them, its records to ``stream``; once the stream has committed those, the next
    round (so each record sees exactly the updates of the rounds up to its own)."""
    updates = records = 0
    for rnd in plan:
        await append(redis, options, *table, rnd.updates)
        updates += len(rnd.updates)
        await wait_committed(handle, table[0], updates)
        await append(redis, options, *stream, rnd.records)
        records += len(rnd.records)
        await wait_committed(handle, stream[0], records)
