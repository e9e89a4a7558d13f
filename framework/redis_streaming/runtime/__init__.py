"""The stream-processing runtime: jobs of operators over partitioned topics, with keyed state
in Redis beside each partition and one atomic, lease-fenced commit per batch (docs/runtime.md).
"""

from redis_streaming.runtime.admin import JobCatalog, JobDescription
from redis_streaming.runtime.context import ProcessContext
from redis_streaming.runtime.handle import JobHandle, JobState, JobStatus, StageStatus
from redis_streaming.runtime.job import Job
from redis_streaming.runtime.joining import Table
from redis_streaming.runtime.operators import FiredTimer
from redis_streaming.runtime.options import RuntimeOptions
from redis_streaming.runtime.reader import StateReader
from redis_streaming.runtime.stream import Stream

__all__ = [
    "FiredTimer",
    "Job",
    "JobCatalog",
    "JobDescription",
    "JobHandle",
    "JobState",
    "JobStatus",
    "ProcessContext",
    "RuntimeOptions",
    "StageStatus",
    "StateReader",
    "Stream",
    "Table",
]
