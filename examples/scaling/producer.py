"""The producer, without the starter's application: the framework's ``Producer`` on a plain
``redis.asyncio`` client."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from examples.scaling.events import PARTITIONS, TOPIC, Event, handled_key
from redis_streaming import Admin, MQOptions, Producer

DEVICES = 50


async def produce(
    url: str,
    options: MQOptions,
    stop: asyncio.Event,
    per_second: float = 20.0,
    report_every_s: float = 2.0,
) -> None:
    """Send events keyed by device (so each device's events stay in order) until ``stop`` is
    set, printing how many were sent and how many distinct ones the workers have handled."""
    redis = aioredis.Redis.from_url(url)
    handled = handled_key(options.namespace)
    try:
        await Admin(redis, options).create_topic(TOPIC, PARTITIONS)  # or check it exists
        await redis.delete(handled)  # a fresh count for this run
        producer = Producer(redis, options)
        loop = asyncio.get_running_loop()
        next_report = loop.time() + report_every_s
        sent = 0
        while not stop.is_set():
            device = f"device-{sent % DEVICES}"
            await producer.send(TOPIC, Event(device=device, seq=sent), key=device)
            sent += 1
            if loop.time() >= next_report:
                print(f"producer: sent {sent}, handled {await redis.scard(handled)}", flush=True)
                next_report += report_every_s
            await asyncio.sleep(1 / per_second)
    finally:
        await redis.aclose()
