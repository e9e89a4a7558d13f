import pytest

from redis_streaming import InvalidName, Keys
from redis_streaming.mq.keys import validate_name


@pytest.mark.parametrize("name", ["orders", "a", "A.b_c-9", "x" * 200])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "has space", "a:b", "{t}", "x" * 201, "é", None, 5])
def test_invalid_names_say_what_is_allowed(name: object) -> None:
    with pytest.raises(InvalidName, match=r"A-Z, a-z, 0-9"):
        validate_name(name)


def test_key_layout_uses_hash_tags() -> None:
    k = Keys("rs")
    assert k.topics == "rs:topics"
    assert k.topic("orders") == "rs:topic:{orders}"
    assert k.stream("orders", 3) == "rs:stream:{orders:3}"
    assert k.retry("orders", 3, "billing") == "rs:retry:{orders:3}:billing"
    assert k.redeliver("orders", 3, "billing") == "rs:redeliver:{orders:3}:billing"
    assert k.delayed("orders", 3) == "rs:delayed:{orders:3}"
    assert k.lease("orders", 3, "billing") == "rs:lease:{orders:3}:billing"
    assert k.members("orders", "billing") == "rs:members:{orders}:billing"
    assert k.dlq("orders") == "rs:dlq:{orders}"


def test_namespace_is_validated() -> None:
    with pytest.raises(InvalidName, match="namespace"):
        Keys("bad ns")
