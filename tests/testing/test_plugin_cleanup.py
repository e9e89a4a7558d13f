import socket
import subprocess
import sys
from pathlib import Path

FAILING_TEST = """
import pathlib

async def test_fails(rs_redis, rs_server_url):
    pathlib.Path(__file__).with_name("url.txt").write_text(rs_server_url)
    assert await rs_redis.ping()
    raise AssertionError("deliberate failure")
"""


def test_a_failing_run_leaves_no_server_behind(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(FAILING_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "redis_streaming.testing.pytest_plugin",
         "-p", "no:valkey", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin:" + str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "deliberate failure" in run.stdout
    port = int((tmp_path / "url.txt").read_text().rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the server still listens"
