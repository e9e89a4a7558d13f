"""A window operator keeps each key's timer at its next close (the earliest end + grace of the
key's open windows), whatever order the records come in; the member is encode_key([op, key])."""

from __future__ import annotations

from redis_streaming import agg, windows
from redis_streaming.runtime.context import BatchRun
from redis_streaming.runtime.records import Record
from redis_streaming.runtime.windowed import window_kind
from redis_streaming.runtime.windowing import WindowAggregate
from redis_streaming.state.batch import BatchState
from redis_streaming.state.cache import ABSENT, StateCache
from redis_streaming.state.codec import encode_key
from redis_streaming.state.stores import StoreSpec


async def test_the_timer_follows_the_earliest_open_window_of_out_of_order_records() -> None:
    node = WindowAggregate(
        window_kind(windows.tumbling(1), 0.5), agg.count(), StoreSpec("w"), "op-1",
        final=True, late_to=None,
    )  # fmt: skip
    cache = StateCache(100)
    for key in ("a", "é" * 40):
        cache.put(("w", encode_key(key)), ABSENT)
    run = BatchRun(BatchState(cache), 1 << 20)
    member = encode_key(["op-1", "a"])
    assert node.member("a") == member
    assert node.member("é" * 40) == encode_key(["op-1", "é" * 40])
    steps = [(5_200, 6_500), (5_900, 6_500), (2_100, 3_500), (7_000, 3_500), (0, 1_500)]
    for ts, timer in steps:
        await node.push(run, Record("a", {}, ts))
        assert run.timers.get(member) == timer, ts
    assert run.state.get("w", encode_key("a")) == [
        [0, 1000, 1], [2000, 3000, 1], [5000, 6000, 2], [7000, 8000, 1]
    ]  # fmt: skip
    await node.push(run, Record("é" * 40, {}, 9_000))
    assert run.timers.get(encode_key(["op-1", "é" * 40])) == 10_500
