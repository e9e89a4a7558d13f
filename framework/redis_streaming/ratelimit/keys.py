"""The rate limiters' Redis key (docs/design.md, "Rate limiting"). No other module formats it.

One key per limiter name, hash-tagged ``{<name>}`` so its script is cluster-safe:
``{ns}:ratelimit:{<name>}``, a HASH (token bucket: ``tokens``, ``ts``) or a ZSET (sliding window:
one member per permit, score = its time in microseconds), expiring once idle. A name is one or
more names of the usual rule joined by ``:`` (a consumer group's limit is ``<topic>:<group>``).
"""

from __future__ import annotations

from redis_streaming._redis.names import validate_name
from redis_streaming.errors import InvalidName

__all__ = ["RateLimitKeys", "validate_limiter_name"]


def validate_limiter_name(name: object) -> str:
    """Return ``name`` if every ``:``-separated part is a valid name (``[A-Za-z0-9._-]{1,200}``);
    raises :class:`~redis_streaming.errors.InvalidName` otherwise."""
    if not isinstance(name, str):
        raise InvalidName(f"invalid rate limiter name {name!r}: use a string")
    for part in name.split(":"):
        validate_name(part, "rate limiter name part")
    return name


class RateLimitKeys:
    """Builds the rate limiters' keys of one namespace."""

    __slots__ = ("namespace",)

    def __init__(self, namespace: str = "rs") -> None:
        self.namespace = validate_name(namespace, "namespace")

    def limiter(self, name: str) -> str:
        """The one key of limiter ``name`` (validated here): its bucket HASH or window ZSET."""
        return f"{self.namespace}:ratelimit:{{{validate_limiter_name(name)}}}"
