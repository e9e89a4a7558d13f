"""The PostgreSQL test server (redis_streaming.testing.postgres) and the per-test database."""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from redis_streaming import ConfigurationError
from redis_streaming.testing import PostgresServer, find_postgres_bin_dir
from redis_streaming.testing.pg_database import create_database, drop_database


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, whose parent died without reaping it, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_database_has_logical_decoding_with_pgoutput(rs_pg_database: str) -> None:
    with psycopg.connect(rs_pg_database, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SHOW wal_level").fetchone() == ("logical",)
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric)")
        conn.execute("CREATE PUBLICATION orders_pub FOR TABLE orders")
        row = conn.execute("SELECT * FROM pg_create_logical_replication_slot('s', 'pgoutput')")
        assert row.fetchone() is not None
        conn.execute("INSERT INTO orders VALUES (1, 9.5)")
        changes = conn.execute(
            "SELECT data FROM pg_logical_slot_get_binary_changes('s', NULL, NULL,"
            " 'proto_version', '1', 'publication_names', 'orders_pub')"
        ).fetchall()
        # pgoutput messages: Begin, Relation, Insert, Commit
        assert [bytes(data)[:1] for (data,) in changes] == [b"B", b"R", b"I", b"C"]


def test_a_dropped_database_takes_its_slots_and_sessions_along(rs_postgres_url: str) -> None:
    """What keeps a database alive (a slot in use by a walsender, an open session) does not
    stop the drop: a plain ``DROP DATABASE ... WITH (FORCE)`` refuses an active slot."""
    url = create_database(rs_postgres_url, "t_dropped_with_a_slot")
    session = psycopg.connect(url, autocommit=True)
    session.execute("SELECT pg_create_logical_replication_slot('in_use', 'pgoutput')")
    session.execute("CREATE PUBLICATION pub FOR ALL TABLES")
    receiver = subprocess.Popen(
        [str(find_postgres_bin_dir() / "pg_recvlogical"), "-d", url, "--slot", "in_use",
         "--start", "--no-loop", "-f", os.devnull, "-o", "proto_version=1",
         "-o", "publication_names=pub"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with psycopg.connect(rs_postgres_url, autocommit=True) as conn:
            deadline = time.monotonic() + 10
            while not _slot_active(conn, "in_use"):
                assert time.monotonic() < deadline, "pg_recvlogical never took the slot"
                time.sleep(0.02)
            drop_database(rs_postgres_url, "t_dropped_with_a_slot")
            left = conn.execute(
                "SELECT (SELECT count(*) FROM pg_database WHERE datname = 't_dropped_with_a_slot'),"
                " (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'in_use')"
            ).fetchone()
        assert left == (0, 0)
        with pytest.raises(psycopg.OperationalError):  # the session was terminated
            session.execute("SELECT 1")
    finally:
        session.close()
        receiver.kill()
        receiver.wait()


def _slot_active(conn: psycopg.Connection[tuple[object, ...]], slot: str) -> bool:
    row = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", [slot])
    return row.fetchone() == (True,)


@pytest.mark.slow
def test_committed_data_survives_a_kill_and_a_restart() -> None:
    with PostgresServer() as server:
        port = server.port
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
            conn.execute("INSERT INTO t VALUES (1)")
        server.kill()
        assert not server.running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.url, connect_timeout=2).close()
        server.start()  # right after start() it accepts connections: no stale "ready"
        with psycopg.connect(server.url, autocommit=True) as conn:
            assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
            assert conn.execute("SELECT slot_name FROM pg_replication_slots").fetchall() == [("s",)]
            conn.execute("INSERT INTO t VALUES (2)")
        server.restart()
        assert server.port == port
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    assert not server.running
    assert not server.data_dir.exists()


@pytest.mark.slow
def test_server_dies_with_the_process_that_started_it() -> None:
    code = (
        "import sys; from redis_streaming.testing import PostgresServer;"
        "s = PostgresServer().start(); print(s.process.pid, s.data_dir.parent, flush=True);"
        "sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None
    assert child.stdout is not None
    pid, folder = child.stdout.readline().split()
    try:
        assert _alive(int(pid))
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 10
        while _alive(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(int(pid))
    finally:
        child.stdin.close()
        child.stdout.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_port_held_by_another_process_fails_the_start() -> None:
    """The port was free when chosen and another process took it before the server bound it:
    start() says so (with the server's log) instead of returning a server that is not ours."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        server = PostgresServer(port=holder.getsockname()[1])
        try:
            with pytest.raises(ConfigurationError, match="did not start on port"):
                server.start()
            assert not server.running
        finally:
            server.close()


_WITHOUT_POSTGRES_ON_PATH = """
import shutil, psycopg
from redis_streaming.testing.postgres import PostgresServer, find_postgres_bin_dir
assert shutil.which("postgres") is None, shutil.which("postgres")
with PostgresServer() as server, psycopg.connect(server.url) as conn:
    print(find_postgres_bin_dir(), conn.execute("SHOW wal_level").fetchone()[0])
"""


@pytest.mark.slow
def test_without_postgres_on_path_the_pgserver_binaries_serve() -> None:
    if importlib.util.find_spec("pgserver") is None:
        pytest.skip("pgserver is not installed (no wheel for this Python or platform)")
    path = os.pathsep.join(
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not (Path(d) / "postgres").exists()
    )
    env = {k: v for k, v in os.environ.items() if k != "REDIS_STREAMING_POSTGRES_BIN_DIR"}
    run = subprocess.run(
        [sys.executable, "-c", _WITHOUT_POSTGRES_ON_PATH],
        env={**env, "PATH": path}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    bin_dir, wal_level = run.stdout.split()
    assert Path(bin_dir).parts[-3:] == ("pgserver", "pginstall", "bin")
    assert wal_level == "logical"


_TWO_TESTS = """
import pathlib

def test_one(rs_pg_database):
    pathlib.Path(__file__).with_name("one.txt").write_text(rs_pg_database)

def test_two(rs_pg_database):
    pathlib.Path(__file__).with_name("two.txt").write_text(rs_pg_database)
    raise AssertionError("deliberate failure")
"""


def test_each_test_gets_its_own_database_dropped_after_it(
    rs_postgres_url: str, tmp_path: Path
) -> None:
    """An inner run pointed at this server by ``POSTGRES_URL``: two tests, two databases, none
    left behind, also after a failure."""
    (tmp_path / "test_inner.py").write_text(_TWO_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "redis_streaming.testing.pytest_plugin",
         "-p", "no:valkey", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "POSTGRES_URL": rs_postgres_url},
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    urls = [(tmp_path / f"{n}.txt").read_text() for n in ("one", "two")]
    names = [url.rsplit("/", 1)[1] for url in urls]
    assert names[0] != names[1]
    assert all(url.startswith(rs_postgres_url.rsplit("/", 1)[0]) for url in urls)
    with psycopg.connect(rs_postgres_url) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", [names])
        assert left.fetchall() == []
