"""The outbox forwarder (redis_streaming.runtime.forwarder) on a single server and on a 3-master
cluster: outbox entries reach their targets in other slots exactly once and in order, with their
wire fields only, the outbox is trimmed of what was forwarded and of nothing else, and a repeat,
a crash between append and trim, or two forwarders racing append nothing twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from redis_streaming import MQOptions
from redis_streaming._redis.lua import LuaScript
from redis_streaming.cluster import is_cluster, ready
from redis_streaming.mq.wire.codec import entry_args
from redis_streaming.runtime.forwarder import OutboxForwarder
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.testing import client_from_url

pytestmark = pytest.mark.cluster

JOB, STAGE, SOURCE, OUT = "wc", "wc.s1", "wc.s0.repartition", "word-counts"
Fields = list[tuple[bytes, bytes]]


def wire(n: int, *, headers: bool = False) -> list[Any]:
    """The wire fields of output ``n`` (every third with headers)."""
    return entry_args(
        f'{{"n":{n}}}'.encode(),
        "application/json",
        f"k{n}",
        b'{"h":"v"}' if headers or n % 3 == 0 else None,
        1_700_000_000_000 + n,
    )


def as_fields(args: list[Any]) -> Fields:
    """``entry_args`` output as the (name, value) bytes pairs XRANGE returns."""
    raw = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return list(zip(raw[::2], raw[1::2], strict=True))


class Outbox:
    """Writes the outbox of task ``STAGE`` on ``SOURCE:partition`` by hand, as the commit
    script does on a cluster, and remembers what each target should get."""

    def __init__(self, redis: Any, keys: RuntimeKeys, partition: int = 0) -> None:
        self.redis, self.keys, self.partition = redis, keys, partition
        self.key = keys.outbox(SOURCE, partition, STAGE)
        self.expected: dict[int, list[Fields]] = {}
        self.ids: dict[int, list[bytes]] = {}

    async def add(self, target: int, n: int, *, maxlen: int = 0, id: str = "*") -> bytes:
        args = wire(n)
        meta = ["rs_target", self.keys.mq.stream(OUT, target), "rs_target_topic", OUT]
        meta += ["rs_target_partition", target, "rs_maxlen", maxlen]
        self.expected.setdefault(target, []).append(as_fields(args))
        entry_id: bytes = await self.redis.xadd(self.key, _pairs(meta + args), id=id)
        self.ids.setdefault(target, []).append(entry_id)
        return entry_id

    def forwarder(self, redis: Any | None = None) -> OutboxForwarder:
        return OutboxForwarder(redis or self.redis, self.keys, JOB, STAGE, SOURCE, self.partition)


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def targets(redis: Any, keys: RuntimeKeys, partitions: range) -> dict[int, list[Fields]]:
    """The fields of every entry of each target partition, in stream order (empty ones left
    out)."""
    found: dict[int, list[Fields]] = {}
    for j in partitions:
        entries = await redis.xrange(keys.mq.stream(OUT, j))
        if entries:
            found[j] = [list(fields.items()) for _, fields in entries]
    return found


@pytest.fixture
def keys(rs_options: MQOptions) -> RuntimeKeys:
    return RuntimeKeys(rs_options.namespace)


async def test_entries_reach_their_targets_in_order_with_their_wire_fields_and_leave_the_outbox(
    rs_redis: Any, keys: RuntimeKeys
) -> None:
    box = Outbox(rs_redis, keys)
    for n in range(30):
        await box.add(n % 6, n)  # six targets: six hash tags
    if is_cluster(rs_redis):  # in slots of more than one master
        nodes = {rs_redis.get_node_from_key(keys.mq.stream(OUT, j)).name for j in range(6)}
        assert len(nodes) > 1
    fwd = box.forwarder()
    assert await fwd.backlog() == 30
    assert await fwd.forward() == 30
    assert await targets(rs_redis, keys, range(6)) == box.expected
    assert await fwd.backlog() == 0
    for j in range(6):  # the high-water mark beside each target: the last outbox id it got
        marks = await rs_redis.hgetall(keys.forwarded(OUT, j, JOB))
        assert marks == {f"{STAGE}|{SOURCE}:0".encode(): box.ids[j][-1]}
    assert await fwd.forward() == 0  # nothing left: appends nothing
    assert await targets(rs_redis, keys, range(6)) == box.expected


async def test_a_second_forward_of_the_same_entries_appends_nothing(
    rs_redis: Any, keys: RuntimeKeys
) -> None:
    """A crash after the targets got the entries but before the outbox was trimmed: the same
    entries are forwarded again (here the script is run by hand first, then forward())."""
    box = Outbox(rs_redis, keys)
    for n in range(12):
        await box.add(n % 4, n)
    entries = await rs_redis.xrange(box.key)
    script = LuaScript("redis_streaming.runtime.scripts", "forward")
    source = f"{STAGE}|{SOURCE}:0"
    for j in range(4):
        args: list[Any] = [source, 0]
        for entry_id, fields in entries:
            if int(fields[b"rs_target_partition"]) == j:
                items = [x for k, v in fields.items() if not k.startswith(b"rs_") for x in (k, v)]
                args += [entry_id, len(items), *items]
        hwm = keys.forwarded(OUT, j, JOB)
        assert await script(rs_redis, [keys.mq.stream(OUT, j), hwm], args) == 3
        assert await script(rs_redis, [keys.mq.stream(OUT, j), hwm], args) == 0  # idempotent
    assert await box.forwarder().forward() == 12  # handled: found already appended
    assert await targets(rs_redis, keys, range(4)) == box.expected
    assert await rs_redis.xlen(box.key) == 0


async def test_ids_compare_as_numbers_not_as_text(rs_redis: Any, keys: RuntimeKeys) -> None:
    """``10-0`` is after ``9-5`` and ``11-10`` after ``11-9``, though not as strings."""
    box = Outbox(rs_redis, keys)
    for n, entry_id in enumerate(["9-5", "10-0", "11-9", "11-10", "123456789012345-2"]):
        await box.add(0, n, id=entry_id)
    fwd = box.forwarder()
    assert await fwd.forward(limit=1) == 1
    assert await fwd.forward(limit=2) == 2
    assert await fwd.forward() == 2
    assert await targets(rs_redis, keys, range(1)) == box.expected


async def test_entries_appended_after_the_read_stay_in_the_outbox(
    rs_redis: Any, keys: RuntimeKeys
) -> None:
    box = Outbox(rs_redis, keys)
    for n in range(5):
        await box.add(n % 2, n)
    assert await box.forwarder().forward(limit=3) == 3  # a limit leaves the rest
    assert await box.forwarder().backlog() == 2

    class LateCommit:
        """The client, but a commit appends to the outbox right after the forwarder reads it."""

        def __init__(self, redis: Any) -> None:
            self.redis = redis

        def __getattr__(self, name: str) -> Any:
            return getattr(self.redis, name)

        async def xrange(self, *args: Any, **kwargs: Any) -> Any:
            read = await self.redis.xrange(*args, **kwargs)
            await box.add(1, 100)
            return read

    assert await box.forwarder(LateCommit(rs_redis)).forward() == 2
    assert await box.forwarder().backlog() == 1  # the late entry, kept
    assert await box.forwarder().forward() == 1
    assert await targets(rs_redis, keys, range(2)) == box.expected
    assert await box.forwarder().backlog() == 0


async def test_each_source_task_has_its_own_high_water_mark(
    rs_redis: Any, keys: RuntimeKeys
) -> None:
    """Two tasks' outboxes feed one target; the second's ids are below the first's mark."""
    first, second = Outbox(rs_redis, keys, 0), Outbox(rs_redis, keys, 1)
    await first.add(0, 1, id="500-0")
    await second.add(0, 2, id="400-0")
    assert await first.forwarder().forward() == 1
    assert await second.forwarder().forward() == 1
    assert await targets(rs_redis, keys, range(1)) == {0: first.expected[0] + second.expected[0]}


async def test_the_targets_maxlen_is_applied(rs_redis: Any, keys: RuntimeKeys) -> None:
    box = Outbox(rs_redis, keys)
    for n in range(500):
        await box.add(0, n, maxlen=10)
    await box.add(1, 500, maxlen=0)
    assert await box.forwarder().forward() == 501
    assert await rs_redis.xlen(keys.mq.stream(OUT, 0)) < 250  # ~ trims whole nodes (100 each)
    assert await rs_redis.xlen(keys.mq.stream(OUT, 1)) == 1


async def test_two_forwarders_racing_append_each_entry_once_in_order(
    rs_redis: Any, rs_url: str, keys: RuntimeKeys
) -> None:
    """A zombie and the new owner forward the same outbox at once, round after round, while
    commits keep appending to it."""
    other = await ready(client_from_url(rs_url))
    try:
        box = Outbox(rs_redis, keys)
        zombie, owner = box.forwarder(), box.forwarder(other)
        n = 0
        for _ in range(15):
            for _ in range(8):
                await box.add(n % 5, n)
                n += 1
            await asyncio.gather(zombie.forward(limit=5), owner.forward(limit=7), box.add(n % 5, n))
            n += 1
        while await owner.forward():
            pass
        assert await targets(rs_redis, keys, range(5)) == box.expected
        assert await zombie.backlog() == 0
    finally:
        await other.aclose()
