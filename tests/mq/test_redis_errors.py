"""Error codes from redis-py's exceptions, including the forms pipelines rewrite them into."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from redis_streaming.mq.redis_errors import error_code


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
