"""What one cluster node reports about the others: ``CLUSTER INFO`` and ``CLUSTER NODES``
parsed (the text formats every Redis and Valkey version since 3.0 answers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["NodeView", "cluster_info", "cluster_nodes"]


@dataclass(frozen=True)
class NodeView:
    """One line of ``CLUSTER NODES``: a node as the asked node sees it."""

    id: str
    port: int
    flags: frozenset[str]
    primary_id: str | None  # the primary a replica follows; None for a primary
    connected: bool
    ranges: tuple[tuple[int, int], ...]  # inclusive slot ranges served (primaries)

    @property
    def primary(self) -> bool:
        return "master" in self.flags

    @property
    def myself(self) -> bool:
        return "myself" in self.flags

    @property
    def failed(self) -> bool:
        """Flagged ``fail`` (agreed failed) or ``fail?`` (suspected by the asked node)."""
        return bool(self.flags & {"fail", "fail?"})

    @property
    def slots(self) -> int:
        """How many slots the node serves."""
        return sum(last - first + 1 for first, last in self.ranges)

    def serves(self, slot: int) -> bool:
        return any(first <= slot <= last for first, last in self.ranges)


def cluster_nodes(client: Any) -> list[NodeView]:
    """``CLUSTER NODES`` of the node ``client`` (a synchronous ``redis.Redis``) talks to."""
    raw = client.execute_command("CLUSTER", "NODES")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return [_parse(line) for line in text.splitlines() if line.strip()]


def _parse(line: str) -> NodeView:
    # <id> <ip:port@cport[,hostname]> <flags> <primary> <ping> <pong> <epoch> <link> <slot>...
    fields = line.split()
    address = fields[1].split("@", 1)[0]
    ranges = []
    for item in fields[8:]:
        if item.startswith("["):  # a slot being imported or migrated: not served yet
            continue
        first, _, last = item.partition("-")
        ranges.append((int(first), int(last or first)))
    return NodeView(
        id=fields[0],
        port=int(address.rsplit(":", 1)[1] or 0),
        flags=frozenset(fields[2].split(",")),
        primary_id=None if fields[3] == "-" else fields[3],
        connected=fields[7] == "connected",
        ranges=tuple(ranges),
    )


def cluster_info(client: Any) -> dict[str, str]:
    """``CLUSTER INFO`` of the node ``client`` talks to, as text values."""
    raw = client.execute_command("CLUSTER", "INFO")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition(":")
        if sep:
            out[name] = value
    return out
