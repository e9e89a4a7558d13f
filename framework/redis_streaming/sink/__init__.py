"""Sinks: where a job's records leave it (``stream.sink(sink)``), with their delivery
guarantees. The pure parts live here; the runtime's nodes that feed them are in
:mod:`redis_streaming.runtime.sinking`.

- :class:`RedisSink`: upserts into Redis, part of the batch's commit (exactly-once).
- :class:`PostgresSink`: upserts or appends into a Postgres table, exactly-once through an
  offsets table written in the same transaction (needs the ``postgres`` extra).
- :class:`CallableSink`: ``fn(records)`` per batch (at-least-once).
- Anything with ``async write(batch)`` (:class:`Sink`).
"""

from redis_streaming.sink.base import CallableSink, Sink, SinkBatch, SinkRecord
from redis_streaming.sink.postgres import PostgresSink
from redis_streaming.sink.redis import RedisSink

__all__ = ["CallableSink", "PostgresSink", "RedisSink", "Sink", "SinkBatch", "SinkRecord"]
