"""What producers return and consumers receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Message", "ProducerRecord", "SendResult"]


@dataclass(slots=True, frozen=True)
class SendResult:
    """Where a message was written.

    ``message_id`` is the stream entry id (``"<ms>-<seq>"``). For a delayed send the entry does
    not exist yet: ``message_id`` is ``None`` and ``due_ms`` is the epoch-millisecond time after
    which the delayed-message mover appends it to the partition stream.
    """

    topic: str
    partition: int
    message_id: str | None
    due_ms: int | None = None


@dataclass(slots=True, frozen=True)
class ProducerRecord:
    """One message for :meth:`Producer.send_many` that needs a key, headers or a partition.

    Plain payloads may be passed to ``send_many`` directly; wrap them in a ``ProducerRecord`` only
    when one of these fields is needed.
    """

    payload: Any
    key: str | None = None
    headers: dict[str, str] | None = None
    partition: int | None = None


@dataclass(slots=True, frozen=True)
class Message:
    """One delivered stream entry, as a handler sees it.

    ``payload`` is the body decoded by its ``content_type`` (JSON value, ``str`` or ``bytes``);
    ``raw`` the undecoded bytes. ``timestamp`` is the producer's clock in epoch milliseconds.
    ``attempt`` counts deliveries of this message to ``group``, starting at 1; ``origin_id`` is
    the id of the original entry when this one is a retry or replay.
    """

    id: str
    topic: str
    partition: int
    payload: Any
    raw: bytes
    content_type: str
    key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timestamp: int = 0
    attempt: int = 1
    group: str | None = None
    origin_id: str | None = None
