"""Error codes from redis-py's exceptions, including the forms pipelines rewrite them into, and
the text of a refused connection."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from redis_streaming import Admin, MQOptions, RedisUnavailable
from redis_streaming._redis.errors import as_unavailable, error_code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("NOGROUP No such key 'x'", "NOGROUP"),
        ("Command # 1 (XREADGROUP GROUP g c) of pipeline caused error: NOGROUP No such", "NOGROUP"),
        (
            "Command # 2 (XREADGROUP x) of pipeline caused error: "
            "('UNBLOCKED the stream key no longer exists',)",
            "UNBLOCKED",
        ),
        ("", ""),
    ],
)
def test_error_code(text: str, code: str) -> None:
    assert error_code(ResponseError(text)) == code


def test_not_a_response_error_has_no_code() -> None:
    assert error_code(ValueError("NOGROUP")) == ""


async def test_refused_credentials_are_not_called_unreachable(rs_server_url: str) -> None:
    """A wrong password on a real server: the error says the server refused the credentials."""
    url = rs_server_url.replace("redis://", "redis://nobody:wrong-password@", 1)
    client = aioredis.from_url(url)
    try:
        with pytest.raises(RedisUnavailable) as failed:
            await Admin(client, MQOptions()).list_topics()
    finally:
        await client.aclose()
    text = str(failed.value)
    assert "refused the credentials" in text
    assert "unreachable" not in text
    assert "wrong-password" not in text


def test_a_lost_connection_is_translated_once_by_the_innermost_call() -> None:
    """Nested calls: the error names what the innermost one was doing, not every caller's."""
    client = aioredis.Redis(host="127.0.0.1", port=1)  # never connected
    with (
        pytest.raises(RedisUnavailable) as raised,
        as_unavailable(client, "sending"),
        as_unavailable(client, "reading topic metadata"),
    ):
        raise ConnectionError("connection reset")
    assert str(raised.value).startswith("Redis at 127.0.0.1:1 is unreachable while reading topic")
    assert "sending" not in str(raised.value)
    with pytest.raises(KeyError), as_unavailable(client, "sending"):
        raise KeyError("not a connection error: passes as it is")
