"""An instance process for registry tests (run as a script, not collected by pytest).

  python instance_proc.py URL OPTIONS_JSON SERVICE INSTANCE_ID PORT

Registers SERVICE/INSTANCE_ID on 127.0.0.1:PORT and heartbeats until SIGTERM (then deregisters
and exits 0). Prints "ready" once registered. SIGKILL leaves the registration to expire.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from redis_streaming.registry import RegistryOptions, ServiceInstance, ServiceRegistry
from redis_streaming.testing import client_from_url


async def main() -> None:
    url, options_json, service, instance_id, port = sys.argv[1:6]
    redis = client_from_url(url)  # a cluster client for redis+cluster://
    options = RegistryOptions.model_validate(json.loads(options_json))
    instance = ServiceInstance(service, instance_id, "127.0.0.1", int(port))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with ServiceRegistry(redis, options).registration(instance):
        print("ready", flush=True)
        await stop.wait()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
