"""The ``redis.sentinel`` settings section: Redis behind Sentinel (one master, its replicas, and
the Sentinels that promote a replica when the master fails)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from redis_streaming_starter.settings_sections import Section, comma_list

__all__ = ["SentinelSettings", "parse_node"]


def parse_node(text: str) -> tuple[str, int]:
    """``(host, port)`` of ``host:port`` (``[v6]:port`` for an IPv6 address); ``ValueError``
    saying what is expected otherwise."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"Sentinel node {text!r} is not host:port; list the Sentinels as "
            "host:port,host:port (e.g. sentinel-1:26379,sentinel-2:26379,sentinel-3:26379)"
        )
    return host, int(port)


class SentinelSettings(Section):
    """Redis Sentinel: the client asks the Sentinels which node is the master of
    ``master_name``, connects to it, and asks again after a failover."""

    nodes: Annotated[list[str], NoDecode] = Field(
        ...,
        min_length=1,
        description="The Sentinels as host:port, comma-separated (list them all: any one that "
        "answers is enough).",
    )
    master_name: str = Field(
        ..., min_length=1, description="Name of the master the Sentinels monitor."
    )
    username: str | None = Field(
        None, description="ACL user of the data nodes (master and replicas); unset = default."
    )
    password: SecretStr | None = Field(
        None, description="Password of the data nodes (requirepass or the ACL user's)."
    )
    sentinel_username: str | None = Field(
        None, description="ACL user of the Sentinels themselves; unset = default."
    )
    sentinel_password: SecretStr | None = Field(
        None,
        description="Password of the Sentinels themselves (their requirepass); unset = the "
        "Sentinels need none.",
    )
    db: int = Field(0, ge=0, description="Database number on the master.")
    socket_timeout_s: float = Field(
        1.0,
        gt=0,
        description="Connect and read timeout of a query to one Sentinel (a Sentinel that does "
        "not answer in time is skipped for the next).",
    )

    @field_validator("nodes", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("nodes")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for node in value:
            parse_node(node)
        return value

    def addresses(self) -> list[tuple[str, int]]:
        """The Sentinels as ``(host, port)``."""
        return [parse_node(node) for node in self.nodes]

    def described(self) -> str:
        """``master <name> via host:port,host:port`` (for logs and the CLI; no secrets)."""
        return f"master {self.master_name!r} via Sentinels {','.join(self.nodes)}"
