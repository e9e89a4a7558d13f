"""Sources: external readers copied into topics exactly once (docs/cdc.md).

A :class:`Source` yields records with totally ordered positions; a :class:`SourceRunner` (a
leased singleton) appends them to their topics' partitions, each at most once, stores the
position and lets the source release what is before it. :class:`SqlPollingSource` polls a SQL
table; :mod:`redis_streaming.cdc` captures PostgreSQL changes.
"""

from redis_streaming.source.appender import POSITION_HEADER
from redis_streaming.source.base import Source, SourceBatch, SourceRecord, check_position
from redis_streaming.source.runner import SourceRunner, SourceStatus
from redis_streaming.source.sql import SqlPollingSource

__all__ = [
    "POSITION_HEADER",
    "Source",
    "SourceBatch",
    "SourceRecord",
    "SourceRunner",
    "SourceStatus",
    "SqlPollingSource",
    "check_position",
]
