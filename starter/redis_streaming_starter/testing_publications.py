"""Captured publications of an application under test: its producer records what it sends.

``AppTest`` makes the container's producer provider build a subclass of the producer's own class
(``record_into``): every ``send`` and ``send_many`` still writes to Redis, and once Redis has
acknowledged the write, the message is appended to a :class:`Publications` list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from redis_streaming import Producer, ProducerRecord, SendResult

__all__ = ["Publication", "Publications", "record_into"]


@dataclass(frozen=True)
class Publication:
    """One message the application sent through its producer, as it was given to it.

    ``payload`` is the object passed to ``send`` (a pydantic model stays a model); ``result``
    says where it went (``result.message_id`` is None for a delayed send).
    """

    topic: str
    payload: Any
    key: str | None
    headers: dict[str, str] | None
    result: SendResult


class Publications:
    """Every publication of one application under test, in the order Redis acknowledged them."""

    def __init__(self) -> None:
        self.all: list[Publication] = []

    def add(self, publication: Publication) -> None:
        self.all.append(publication)

    def of(self, topic: str | None = None) -> list[Publication]:
        """The publications to ``topic`` (all of them when None), oldest first."""
        return [p for p in self.all if topic is None or p.topic == topic]


class _Recording(Producer):
    """Sends as its base class does, then records. The subclass ``record_into`` builds puts
    the application's producer class after this one and sets ``_sink``."""

    _sink: ClassVar[Publications]

    async def send(self, topic: str, payload: Any, *args: Any, **kwargs: Any) -> SendResult:
        result = await super().send(topic, payload, *args, **kwargs)
        key, headers = kwargs.get("key"), kwargs.get("headers")
        self._sink.add(Publication(topic, payload, key, headers, result))
        return result

    async def send_many(
        self, topic: str, messages: Iterable[Any | ProducerRecord], *args: Any, **kwargs: Any
    ) -> list[SendResult]:
        items = list(messages)  # an iterator would be used up by the send
        results = await super().send_many(topic, items, *args, **kwargs)
        for item, result in zip(items, results, strict=True):
            if isinstance(item, ProducerRecord):
                publication = Publication(topic, item.payload, item.key, item.headers, result)
            else:
                publication = Publication(topic, item, None, None, result)
            self._sink.add(publication)
        return results


def record_into(producer_class: type[Producer], sink: Publications) -> type[Producer]:
    """A subclass of ``producer_class`` (``Producer`` or the application's own subclass) that
    records into ``sink`` what it sends."""
    name = f"Recording{producer_class.__name__}"
    bases = (_Recording,) if producer_class is Producer else (_Recording, producer_class)
    recording: type[Producer] = type(name, bases, {"_sink": sink, "__module__": __name__})
    return recording
