"""Durability of writes: how many copies Redis confirms before a write counts as done.

``leader`` (the default) trusts the master's reply. ``replicas=N`` sends ``WAIT N timeout``
after the writes, on the same connection and in the same round trip (a pipeline): Redis answers
once N replicas have acknowledged every write of that connection so far, or at the timeout
with how many did. ``aof`` and ``aof=N`` send ``WAITAOF 1 N timeout`` instead: the master has
fsynced the writes to its append-only file (and N replicas to theirs), Redis 7.2+ or Valkey.

On a Redis Cluster the wait goes to each node the writes went to, in the same pipeline (a
cluster pipeline sends one node's commands on one connection, in order).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from redis_streaming.cluster import is_cluster
from redis_streaming.errors import ConfigurationError, DurabilityError

__all__ = ["LEVELS", "Durability", "normalize", "require_support"]

LEVELS = "'leader', 'replicas=N' (N >= 1), 'aof' or 'aof=N' (N >= 0)"
_FORM = re.compile(r"^\s*(leader|replicas|aof)\s*(?:=\s*(\d+))?\s*$", re.IGNORECASE)


def normalize(value: str) -> str:
    """``value`` checked and written canonically (``"Replicas = 2"`` becomes
    ``"replicas=2"``, ``"aof=0"`` becomes ``"aof"``); ``ConfigurationError`` otherwise."""
    match = _FORM.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigurationError(f"durability {value!r} is not one of {LEVELS}")
    level, count = match[1].lower(), match[2]
    if level == "leader":
        if count is not None:
            raise ConfigurationError(f"durability 'leader' takes no number, got {value!r}")
        return "leader"
    if level == "replicas":
        if count is None or int(count) < 1:
            raise ConfigurationError(
                f"durability {value!r}: say how many replicas must confirm each write, "
                "e.g. 'replicas=1'"
            )
        return f"replicas={int(count)}"
    return "aof" if not count or int(count) == 0 else f"aof={int(count)}"


class Durability:
    """A parsed durability level (see :func:`normalize`) and its wait timeout; what a
    component uses to queue the wait after its writes and to check the reply."""

    __slots__ = ("_supported", "aof", "replicas", "text", "timeout_ms")

    def __init__(self, value: str, timeout_ms: int) -> None:
        self.text = normalize(value)
        level, _, count = self.text.partition("=")
        self.aof = level == "aof"
        self.replicas = int(count) if count else 0
        self.timeout_ms = int(timeout_ms)
        self._supported = not self.aof  # WAITAOF is checked on the server once (ensure)

    @classmethod
    def of(cls, options: Any) -> Durability:
        """The level of an ``MQOptions`` (``durability``, ``durability_timeout_ms``)."""
        return cls(options.durability, options.durability_timeout_ms)

    @property
    def waits(self) -> bool:
        """False for ``leader``: nothing is queued after the writes."""
        return self.aof or self.replicas > 0

    def _command(self) -> tuple[Any, ...]:
        if self.aof:
            return ("WAITAOF", 1, self.replicas, self.timeout_ms)
        return ("WAIT", self.replicas, self.timeout_ms)

    async def ensure(self, redis: Any) -> None:
        """For ``aof``: check once that the server has ``WAITAOF`` and its append-only file is
        on (:func:`require_support`); nothing for the other levels."""
        if not self._supported:
            await require_support(redis, self.text)
            self._supported = True

    def queue(self, pipe: Any, redis: Any, keys: Iterable[str]) -> int:
        """Queue the wait after the writes already in ``pipe`` (to the nodes of ``keys`` on a
        cluster); returns how many replies it adds at the end (0 for ``leader``)."""
        if not self.waits:
            return 0
        command = self._command()
        if not is_cluster(redis):
            pipe.execute_command(*command)
            return 1
        nodes: dict[str, Any] = {}
        for key in keys:
            node = redis.get_node_from_key(key)
            nodes.setdefault(node.name, node)
        for node in nodes.values():
            pipe.execute_command(*command, target_nodes=node)
        return len(nodes)

    def check(self, replies: Sequence[Any], doing: str, written: int) -> None:
        """Raise :class:`DurabilityError` unless every wait reply (the last ones of
        ``replies``, as many as :meth:`queue` added) confirms the level."""
        for reply in replies:
            values = list(reply.values()) if isinstance(reply, dict) else [reply]
            for value in values:
                self._check_one(value, doing, written)

    def _check_one(self, reply: Any, doing: str, written: int) -> None:
        if self.aof:
            local, copies = int(reply[0]), int(reply[1])
            if local >= 1 and copies >= self.replicas:
                return
            raise DurabilityError(
                doing, self.text, written, acknowledged=copies, required=self.replicas,
                timeout_ms=self.timeout_ms, fsynced_locally=local >= 1,
            )  # fmt: skip
        copies = int(reply)
        if copies < self.replicas:
            raise DurabilityError(
                doing, self.text, written, acknowledged=copies, required=self.replicas,
                timeout_ms=self.timeout_ms,
            )  # fmt: skip


async def require_support(redis: Any, level: str = "aof") -> None:
    """Check that the server can confirm ``aof`` durability: it has ``WAITAOF`` (Redis 7.2+,
    Valkey) and ``appendonly yes``. A connection that has written nothing waits for nothing,
    so the probe returns at once. ``ConfigurationError`` saying what to change otherwise."""
    try:
        await redis.execute_command("WAITAOF", 1, 0, 1)
    except ResponseError as exc:
        text = str(exc)
        if "unknown command" in text.lower():
            raise ConfigurationError(
                f"durability {level!r} needs the WAITAOF command (Redis 7.2 or later, or "
                f"Valkey), which this server lacks ({text}); upgrade the server or use "
                "durability 'replicas=N'"
            ) from exc
        if "appendonly" in text.lower():
            raise ConfigurationError(
                f"durability {level!r} waits for the master's append-only file, which is off "
                f"({text}); turn it on (appendonly yes in redis.conf, or CONFIG SET appendonly "
                "yes) or use durability 'replicas=N'"
            ) from exc
        raise
