from __future__ import annotations

import signal
import subprocess
import sys
import time

import redis.asyncio as aioredis

from redis_streaming import Keys, MQOptions, Producer
from redis_streaming.mq.topics import TopicStore
from redis_streaming.testing import free_port
from tests.helpers import fast_env, wait_until
from tests.starter.support import clean_env


def env_for(url: str, namespace: str, **extra: str) -> dict[str, str]:
    return clean_env(**{
        **fast_env(),
        "REDIS_STREAMING_REDIS__URL": url,
        "REDIS_STREAMING_MQ__NAMESPACE": namespace,
        "REDIS_STREAMING_MQ__SHUTDOWN_TIMEOUT_S": "10",
        "REDIS_STREAMING_APP__PORT": str(free_port()),
        **extra,
    })  # fmt: skip


async def test_sigterm_finishes_in_flight_work_then_exits_0(
    rs_redis: aioredis.Redis, rs_server_url: str, rs_namespace: str
) -> None:
    options = MQOptions(namespace=rs_namespace)
    await TopicStore(rs_redis, options).create("work", 2)
    await rs_redis.delete("slow:started", "slow:finished")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.starter.apps.slow"],
        env=env_for(rs_server_url, rs_namespace),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        producer = Producer(rs_redis, options)
        await producer.send_many("work", [{"seconds": 1.5}, {"seconds": 1.5}])

        async def both_started() -> bool:
            return int(await rs_redis.llen("slow:started")) == 2

        await wait_until(both_started, 20, "handlers to start")
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() - signalled < 10 + 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert int(await rs_redis.llen("slow:finished")) == 2  # in-flight work finished
    keys = Keys(rs_namespace)
    for p in range(2):
        assert (await rs_redis.xpending(keys.stream("work", p), "workers"))["pending"] == 0
        assert await rs_redis.get(keys.lease("work", p, "workers")) is None
    assert await rs_redis.zcard(keys.members("work", "workers")) == 0
    await rs_redis.delete("slow:started", "slow:finished")


def test_a_bad_setting_stops_startup_naming_the_variable(rs_server_url: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tests.starter.apps.slow"],
        env=env_for(rs_server_url, "bad", REDIS_STREAMING_MQ__DEFAULT_PARTITIONS="abc"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode != 0
    assert "REDIS_STREAMING_MQ__DEFAULT_PARTITIONS='abc'" in run.stderr
    assert "valid integer" in run.stderr
