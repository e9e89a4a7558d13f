"""Classification of Redis errors, in one place.

Redis reports conditions such as a missing consumer group only through the error text's first
word (its code); every check of those codes lives here.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, TypeVar

from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    RedisClusterUnreachableError,
    ResponseError,
    SlotNotCoveredError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_streaming.errors import RedisUnavailable

__all__ = [
    "as_unavailable",
    "error_code",
    "guarded",
    "is_busygroup",
    "is_connection_error",
    "is_nogroup",
    "is_noscript",
    "is_unblocked",
    "server_address",
    "tls_problem",
    "unavailable",
]


def error_code(exc: BaseException) -> str:
    """The Redis error code (first word of the reply, e.g. ``NOGROUP``), or ``""``."""
    if not isinstance(exc, ResponseError):
        return ""
    text = str(exc)
    # redis-py rewrites errors raised inside a pipeline as
    # "Command # N (<command>) of pipeline caused error: <original text>"
    marker = " of pipeline caused error: "
    if text.startswith("Command # ") and marker in text:
        text = text.split(marker, 1)[1]
    # ... and some versions give the original as a tuple's repr: "('UNBLOCKED the stream ...',)"
    text = text.lstrip("('\"")
    return text.split(" ", 1)[0] if text else ""


_UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ConnectionError,
    # A Redis Cluster failing over: CLUSTERDOWN from every node between a primary's failure
    # and its replica's promotion, no node reachable, or a slot without a node in the map.
    ClusterDownError,
    RedisClusterUnreachableError,
    SlotNotCoveredError,
)
# The slot map redis-py's cluster client reloads after CLUSTERDOWN or a lost node is refused
# while the cluster is mid-failover: slots not covered yet, or nodes that disagree on them. It
# raises the base RedisClusterException then, the type of deterministic errors too (CROSSSLOT,
# unsupported commands), so only these texts tell.
_CLUSTER_IN_FLUX = ("All slots are not covered", "startup_nodes could not agree")


def is_connection_error(exc: BaseException) -> bool:
    """True for a lost or refused connection, a timeout, a server still loading its data, or a
    Redis Cluster that is failing over (``CLUSTERDOWN``, slots without a node, no node
    reachable): conditions that pass by themselves, so the operation is worth retrying later."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    return isinstance(exc, RedisClusterException) and str(exc).startswith(_CLUSTER_IN_FLUX)


def is_nogroup(exc: BaseException) -> bool:
    """The consumer group (or its stream) does not exist, e.g. after a restart without data."""
    return error_code(exc) == "NOGROUP"


def is_busygroup(exc: BaseException) -> bool:
    """``XGROUP CREATE`` found the group already there."""
    return error_code(exc) == "BUSYGROUP"


def is_unblocked(exc: BaseException) -> bool:
    """A blocked XREADGROUP was ended because its stream or group was deleted."""
    return error_code(exc) == "UNBLOCKED"


def is_noscript(exc: BaseException) -> bool:
    """EVALSHA named a script the server does not have cached (e.g. after a restart)."""
    return isinstance(exc, NoScriptError) or error_code(exc) == "NOSCRIPT"


def server_address(redis: Any) -> str:
    """``host:port`` of the client's server (of a cluster client: its seed nodes), for error
    messages."""
    seeds = getattr(redis, "startup_nodes", None)  # redis.asyncio.cluster.RedisCluster
    if isinstance(seeds, list) and seeds:
        names = ", ".join(str(getattr(n, "name", n)) for n in seeds)
        return f"the cluster of {names}"
    try:
        kwargs = redis.connection_pool.connection_kwargs
    except AttributeError:
        return "the configured Redis server"
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def tls_problem(exc: BaseException) -> str | None:
    """What failed in the TLS handshake behind ``exc`` (an ``ssl`` error among its causes) and
    which setting to look at; ``None`` when ``exc`` is not about TLS. A failed verification
    never passes by itself, unlike the connection error redis-py wraps it in."""
    found: BaseException | None = exc
    for _ in range(10):  # the cause chain is short; bounded against cycles
        if found is None:
            return None
        if isinstance(found, ssl.SSLCertVerificationError):
            return (
                f"the server's TLS certificate failed verification ({found.verify_message}); "
                "check that redis.tls.ca_file (REDIS_STREAMING_REDIS__TLS__CA_FILE) is the CA "
                "that signed it and that the certificate names the host of redis.url (or set "
                "redis.tls.check_hostname=false)"
            )
        if isinstance(found, ssl.SSLError):
            return (
                f"the TLS handshake failed ({found.reason or found}); if the server requires "
                "client certificates (tls-auth-clients), set redis.tls.cert_file and "
                "redis.tls.key_file (REDIS_STREAMING_REDIS__TLS__CERT_FILE, __KEY_FILE) to a "
                "certificate its CA signed"
            )
        found = found.__cause__ or found.__context__
    return None


def unavailable(exc: BaseException, redis: Any, doing: str) -> RedisUnavailable:
    """A :class:`RedisUnavailable` for a connection error ``exc`` raised while ``doing``; a
    server that refused the user or password, or a TLS handshake that failed, is reachable,
    and the text says so."""
    problem = tls_problem(exc)
    if problem is not None:
        return RedisUnavailable(
            f"Redis at {server_address(redis)} could not be reached over TLS while {doing}: "
            f"{problem}"
        )
    if isinstance(exc, AuthenticationError):
        return RedisUnavailable(
            f"Redis at {server_address(redis)} refused the credentials while {doing} "
            f"({type(exc).__name__}: {exc}); check the user and password in redis.url "
            "(REDIS_STREAMING_REDIS__URL) and the server's ACL"
        )
    if isinstance(exc, ClusterDownError | SlotNotCoveredError) or (
        isinstance(exc, RedisClusterException) and not isinstance(exc, RedisClusterUnreachableError)
    ):
        return RedisUnavailable(
            f"Redis at {server_address(redis)} is failing over (or has slots no node serves) "
            f"while {doing} ({type(exc).__name__}: {exc}); a replica takes a failed primary's "
            "place within about cluster-node-timeout, then try again"
        )
    return RedisUnavailable(
        f"Redis at {server_address(redis)} is unreachable while {doing} "
        f"({type(exc).__name__}: {exc}); check that the server runs and that redis.url "
        "(REDIS_STREAMING_REDIS__URL) points at it, then try again"
    )


class as_unavailable:  # lower case: a context manager used like a function (as `suppress`)
    """Turn a lost or refused connection raised inside into a :class:`RedisUnavailable` naming
    the server and what was being done; a ``RedisUnavailable`` raised inside passes as it is.

    A class rather than ``@contextmanager``: ``Producer.send`` enters one per message, and this
    costs a fifth as much.
    """

    __slots__ = ("doing", "redis")

    def __init__(self, redis: Any, doing: str) -> None:
        self.redis = redis
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and not isinstance(exc, RedisUnavailable) and is_connection_error(exc):
            raise unavailable(exc, self.redis, self.doing) from exc


T = TypeVar("T")


async def guarded(redis: Any, call: Awaitable[T], doing: str) -> T:
    """``await call`` under :func:`as_unavailable`."""
    with as_unavailable(redis, doing):
        return await call
