"""redis-streaming: partitioned topics, consumer groups, retries and dead letters on Redis Streams.

The framework is usable on its own from any asyncio program: build components with a
``redis.asyncio`` client (replies as bytes, the default) and :class:`MQOptions`.
"""

from redis_streaming._version import __version__
from redis_streaming.aggregation import Aggregator, agg
from redis_streaming.errors import (
    BatchFailed,
    ConfigurationError,
    DeadLetter,
    DecodeError,
    DurabilityError,
    InvalidArgument,
    InvalidName,
    JobNotFound,
    JobRunning,
    PartitionOutOfRange,
    PayloadTooLarge,
    RedisStreamingError,
    RedisUnavailable,
    RequestFailed,
    RequestTimeout,
    Retry,
    TopicNotFound,
)
from redis_streaming.metrics import Metrics
from redis_streaming.mq.admin import Admin, GroupInfo, PartitionInfo, PendingEntry, TopicInfo
from redis_streaming.mq.admin.dead_letters import DeadLetterEntry, DeadLetterPage, DeadLetters
from redis_streaming.mq.admin.gauges import TopicGauges
from redis_streaming.mq.consume.consumer import Consumer
from redis_streaming.mq.consume.subscription import Subscription, SubscriptionState
from redis_streaming.mq.keys import Keys
from redis_streaming.mq.maintenance.delayed import DelayedMover
from redis_streaming.mq.maintenance.housekeeper import Housekeeper
from redis_streaming.mq.options import DlqOptions, MQOptions, RetryPolicy
from redis_streaming.mq.producer import Producer, partition_for_key
from redis_streaming.mq.wire.message import Message, ProducerRecord, SendResult
from redis_streaming.ratelimit import RateLimit, RateLimiter, SlidingWindow, TokenBucket
from redis_streaming.registry import (
    HealthChecker,
    Registration,
    RegistryOptions,
    RegistrySweeper,
    ServiceDiscovery,
    ServiceEvent,
    ServiceEventType,
    ServiceInstance,
    ServiceRegistry,
    ServiceWatch,
)
from redis_streaming.runtime import (
    FiredTimer,
    Job,
    JobCatalog,
    JobDescription,
    JobHandle,
    JobState,
    JobStatus,
    ProcessContext,
    RuntimeOptions,
    StageStatus,
    StateReader,
    Stream,
    Table,
)
from redis_streaming.runtime.windowing import WindowResult
from redis_streaming.sink import CallableSink, PostgresSink, RedisSink, Sink, SinkBatch, SinkRecord
from redis_streaming.state import ListState, MapState, StoreSpec, ValueState
from redis_streaming.window import windows

__all__ = [
    "Admin",
    "Aggregator",
    "BatchFailed",
    "CallableSink",
    "ConfigurationError",
    "Consumer",
    "DeadLetter",
    "DeadLetterEntry",
    "DeadLetterPage",
    "DeadLetters",
    "DecodeError",
    "DelayedMover",
    "DlqOptions",
    "DurabilityError",
    "FiredTimer",
    "GroupInfo",
    "HealthChecker",
    "Housekeeper",
    "InvalidArgument",
    "InvalidName",
    "Job",
    "JobCatalog",
    "JobDescription",
    "JobHandle",
    "JobNotFound",
    "JobRunning",
    "JobState",
    "JobStatus",
    "Keys",
    "ListState",
    "MQOptions",
    "MapState",
    "Message",
    "Metrics",
    "PartitionInfo",
    "PartitionOutOfRange",
    "PayloadTooLarge",
    "PendingEntry",
    "PostgresSink",
    "ProcessContext",
    "Producer",
    "ProducerRecord",
    "RateLimit",
    "RateLimiter",
    "RedisSink",
    "RedisStreamingError",
    "RedisUnavailable",
    "Registration",
    "RegistryOptions",
    "RegistrySweeper",
    "RequestFailed",
    "RequestTimeout",
    "Retry",
    "RetryPolicy",
    "RuntimeOptions",
    "SendResult",
    "ServiceDiscovery",
    "ServiceEvent",
    "ServiceEventType",
    "ServiceInstance",
    "ServiceRegistry",
    "ServiceWatch",
    "Sink",
    "SinkBatch",
    "SinkRecord",
    "SlidingWindow",
    "StageStatus",
    "StateReader",
    "StoreSpec",
    "Stream",
    "Subscription",
    "SubscriptionState",
    "Table",
    "TokenBucket",
    "TopicGauges",
    "TopicInfo",
    "TopicNotFound",
    "ValueState",
    "WindowResult",
    "__version__",
    "agg",
    "partition_for_key",
    "windows",
]
