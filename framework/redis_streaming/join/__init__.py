"""Tables and joins: the pure parts (version histories for as-of lookups). The operators that
use them live in :mod:`redis_streaming.runtime.joining`."""

from redis_streaming.join.versions import as_of, put_version

__all__ = ["as_of", "put_version"]
