"""pytest fixtures: a real server per session, a client and a fresh namespace per test.

Fixtures:

- ``rs_server_url`` (session): ``REDIS_URL`` when set, else the URL of a private server started
  for the session and always stopped afterwards, also when tests fail.
- ``rs_namespace``: a namespace unique to the test (keys never collide between tests).
- ``rs_options``: ``MQOptions`` using that namespace.
- ``rs_redis``: a ``redis.asyncio.Redis`` client (bytes replies), closed after the test.
- ``rs_server``: a private server for this test alone, for fault injection (stop, restart, kill).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from redis_streaming.options import MQOptions
from redis_streaming.testing.server import RedisServer


@pytest.fixture(scope="session")
def rs_server_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def rs_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def rs_namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def rs_options(rs_namespace: str) -> MQOptions:
    return MQOptions(namespace=rs_namespace)


@pytest.fixture
async def rs_redis(rs_server_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(rs_server_url)
    try:
        yield client
    finally:
        await client.aclose()
