"""TEMPORARY (until branch h18-pg is merged): the rs_postgres_url / rs_pg_database fixtures."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.pgtemp_database import create_database, drop_database
from tests.pgtemp_server import PostgresServer


@pytest.fixture(scope="session")
def rs_postgres_url() -> Iterator[str]:
    url = os.environ.get("POSTGRES_URL")
    if url:
        yield url
        return
    server = PostgresServer().start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def rs_pg_database(rs_postgres_url: str) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:12]}"
    url = create_database(rs_postgres_url, name)
    try:
        yield url
    finally:
        drop_database(rs_postgres_url, name)
