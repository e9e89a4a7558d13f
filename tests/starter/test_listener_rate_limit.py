"""``@listener(..., rate_limit=...)``: the acceptance test of issue 18 (a listener limited to
200/s handles 2,000 messages in 10 s ± 10 %, none dropped) through the real application, and
bad specs failing at decoration."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from dependency_injector import providers

from redis_streaming import ConfigurationError, Producer
from redis_streaming_starter import (
    Container,
    RedisStreamingApplication,
    Settings,
    listener,
    resolve,
)
from tests.helpers import wait_until


class Throttled:
    """A listener limited to 200 messages a second."""

    def __init__(self) -> None:
        self.handled: list[float] = []
        self.seen: Counter[int] = Counter()

    @listener("orders", group="billing", id="throttled", rate_limit="200/s")
    async def bill(self, order: dict[str, int]) -> None:
        self.handled.append(time.monotonic())
        self.seen[order["n"]] += 1


class ThrottledContainer(Container):
    throttled = providers.Singleton(Throttled)


@pytest.mark.slow
async def test_a_listener_limited_to_200_a_second_handles_2000_in_10_seconds(
    settings: Settings,
) -> None:
    settings = settings.model_copy(
        update={"mq": settings.mq.model_copy(update={"default_partitions": 4})}
    )
    app = RedisStreamingApplication(settings=settings, container=ThrottledContainer)
    await app.start()
    try:
        throttled: Throttled = await resolve(app.container.throttled)
        producer: Producer = await resolve(app.container.producer)
        await producer.send_many("orders", [{"n": n} for n in range(2000)])
        await wait_until(lambda: len(throttled.handled) >= 2000, 30, "2,000 handled")
    finally:
        await app.stop()
    assert sorted(throttled.seen) == list(range(2000))  # none dropped (nor handled twice)
    assert set(throttled.seen.values()) == {1}
    # The rate limit's correctness bound: 2,000 at 200/s, evenly spaced, take 10 s ± 10 %.
    took_s = throttled.handled[-1] - throttled.handled[0]
    assert 9.0 <= took_s <= 11.0, took_s


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        ("200 per second", "'100/s'"),
        ("200/m", "min"),
        ("200/s, burst=-1", "burst"),
        ("200/s, algorithm=fixed", "sliding_window"),
    ],
)
def test_a_bad_rate_limit_fails_at_decoration_saying_what_to_write(spec: str, hint: str) -> None:
    with pytest.raises(
        ConfigurationError, match=r"@listener\('orders', rate_limit=\.\.\.\)"
    ) as info:
        listener("orders", rate_limit=spec)
    assert hint in str(info.value)
