import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import redis

from redis_streaming import ConfigurationError
from redis_streaming.testing import RedisServer


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); look at its state
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


_DRAWS = """
import socket
from redis_streaming.testing import free_port
with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as f:
    f.write("6376 6383")  # bind(0) draws the odd ones of this range: 6377, 6379, 6381, 6383
def bound():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
print(sum(bound() == 6379 for _ in range(200)), sum(free_port() == 6379 for _ in range(200)))
"""


def test_free_port_is_never_the_default() -> None:
    """In a network namespace of its own whose ephemeral range holds 6379, the kernel hands
    out 6379 to a plain ``bind(0)`` about one time in four; ``free_port`` never returns it."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare(1) to make a network namespace")
    try:
        out = subprocess.run(
            [unshare, "--user", "--map-root-user", "--net", sys.executable, "-c", _DRAWS],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
    except subprocess.CalledProcessError as exc:
        if "unshare" in exc.stderr:  # user namespaces disabled on this machine
            pytest.skip(f"cannot make a network namespace: {exc.stderr.strip()}")
        raise
    plain, ours = map(int, out.split())
    assert plain > 0  # the setting can produce 6379, so this test can fail
    assert ours == 0


def test_stop_and_restart_on_the_same_port() -> None:
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        port = server.port
        server.stop()
        assert not server.running
        with pytest.raises(redis.ConnectionError):
            client.ping()
        server.start()
        assert server.port == port
        assert client.get("k") is None  # no persistence: an empty server
        client.close()
    assert not server.running


def test_server_dies_with_the_process_that_started_it() -> None:
    code = (
        "import sys; from redis_streaming.testing import RedisServer;"
        "s = RedisServer().start(); print(s.process.pid, flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    server_pid = int(child.stdout.readline())
    assert _alive(server_pid)
    child.send_signal(signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 5
    while _alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(server_pid)
    assert child.stdin is not None
    child.stdin.close()
    child.stdout.close()


def test_a_port_held_by_another_server_is_not_taken_for_a_started_one() -> None:
    """The port was free when chosen and another server took it before ours bound it: that
    server answers PING, but ours failed, and start() says so."""
    with RedisServer() as first:
        second = RedisServer(port=first.port)
        try:
            with pytest.raises(ConfigurationError, match=f"on port {first.port}"):
                second.start()
        finally:
            second.close()
        assert redis.Redis(port=first.port).ping()
