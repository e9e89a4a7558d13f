"""A consumer process for multi-process tests (run as a script, not collected by pytest).

  python consumer_proc.py URL OPTIONS TOPIC GROUP CONSUMER_ID RECORD_KEY HANDLER_MS [fail-first]

Every handled message is recorded with RPUSH RECORD_KEY
"consumer|partition|key|payload|attempt|start|end" (times in epoch seconds). SIGTERM stops the
consumer gracefully and exits 0. Prints "ready" once started. With "fail-first", the first
attempt of every message raises (after being recorded with attempt 1 and end time 0).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

from redis_streaming import Consumer, Message, MQOptions
from redis_streaming.testing import client_from_url


def dump_tasks() -> None:
    for task in asyncio.all_tasks():
        task.print_stack(file=sys.stderr)


async def main() -> None:
    url, options_json, topic, group, consumer_id, record_key, handler_ms = sys.argv[1:8]
    redis = client_from_url(url, max_connections=200)  # a cluster client for redis+cluster://
    options = MQOptions.model_validate(json.loads(options_json))
    delay = int(handler_ms) / 1000
    fail_first = sys.argv[8:9] == ["fail-first"]

    async def handle(message: Message) -> None:
        start = time.time()
        if fail_first and message.attempt == 1:
            await redis.rpush(
                record_key,
                f"{consumer_id}|{message.partition}|{message.key}|{message.payload}|1|{start}|0",
            )
            raise RuntimeError("first attempt fails")
        if delay:
            await asyncio.sleep(delay)
        await redis.rpush(
            record_key,
            f"{consumer_id}|{message.partition}|{message.key}|{message.payload}|"
            f"{message.attempt}|{start}|{time.time()}",
        )

    consumer = Consumer(redis, options, consumer_id=consumer_id)
    consumer.subscribe(topic, handle, group=group)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)  # debugging aid: where is it waiting?
    await consumer.start()
    print("ready", flush=True)
    await stop.wait()
    await consumer.stop()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
