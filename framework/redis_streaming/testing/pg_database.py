"""A database per test on a PostgreSQL server (the ``rs_pg_database`` fixture): created empty,
dropped afterwards together with what would keep it alive (sessions, replication slots).

Needs ``psycopg`` (the ``postgres`` extra) and PostgreSQL 13 or newer (``DROP DATABASE ... WITH
(FORCE)``).
"""

from __future__ import annotations

import contextlib
import time
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

__all__ = ["create_database", "database_url", "drop_database"]


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database (the URL's path) replaced by ``name``."""
    return urlsplit(server_url)._replace(path=f"/{name}").geturl()


def create_database(server_url: str, name: str) -> str:
    """Create the empty database ``name`` on the server of ``server_url``; return its URL.

    Raises ``psycopg.errors.DuplicateDatabase`` when it exists.
    """
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(server_url, name)


def drop_database(server_url: str, name: str, timeout_s: float = 10.0) -> None:
    """Drop the database ``name`` if it exists: terminate its sessions (walsenders too), drop its
    logical replication slots (a slot keeps a database from being dropped), then drop it."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        _terminate_sessions(conn, name)
        _drop_slots(conn, name, time.monotonic() + timeout_s)
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _terminate_sessions(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        [name],
    )


def _drop_slots(conn: psycopg.Connection[tuple[object, ...]], name: str, deadline: float) -> None:
    """Drop the database's slots; a slot stays active for a moment after its walsender was told
    to terminate, so retry until ``deadline``."""
    while True:
        slots = conn.execute(
            "SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = %s", [name]
        ).fetchall()
        if not slots:
            return
        for slot, active_pid in slots:
            if active_pid is not None:
                conn.execute("SELECT pg_terminate_backend(%s)", [active_pid])
                continue
            # Taken again, or dropped meanwhile: the next round looks again.
            with contextlib.suppress(psycopg.errors.ObjectInUse, psycopg.errors.UndefinedObject):
                conn.execute("SELECT pg_drop_replication_slot(%s)", [slot])
        if time.monotonic() > deadline:
            raise TimeoutError(f"the replication slots of database {name!r} stay in use: {slots}")
        time.sleep(0.02)
