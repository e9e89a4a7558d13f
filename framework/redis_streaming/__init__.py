"""redis-streaming: partitioned topics, consumer groups, retries and dead letters on Redis Streams.

The framework is usable on its own from any asyncio program: build components with a
``redis.asyncio`` client (replies as bytes, the default) and :class:`MQOptions`.
"""

from redis_streaming.errors import (
    ConfigurationError,
    DeadLetter,
    DecodeError,
    InvalidName,
    PartitionOutOfRange,
    PayloadTooLarge,
    RedisStreamingError,
    RedisUnavailable,
    Retry,
    TopicNotFound,
)
from redis_streaming.metrics import Metrics, TopicGauges
from redis_streaming.mq.admin import Admin, GroupInfo, PartitionInfo, PendingEntry, TopicInfo
from redis_streaming.mq.consumer import Consumer
from redis_streaming.mq.delayed import DelayedMover
from redis_streaming.mq.dlq import DeadLetterEntry, DeadLetterPage, DeadLetters
from redis_streaming.mq.housekeeper import Housekeeper
from redis_streaming.mq.keys import Keys, validate_name
from redis_streaming.mq.message import Message, ProducerRecord, SendResult
from redis_streaming.mq.producer import Producer, partition_for_key
from redis_streaming.mq.retry import RetryPolicy
from redis_streaming.mq.subscription import Subscription, SubscriptionState
from redis_streaming.mq.topics import TopicMeta, TopicStore
from redis_streaming.options import DlqOptions, MQOptions
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

__version__ = "0.1.0"

__all__ = [
    "Admin",
    "ConfigurationError",
    "Consumer",
    "DeadLetter",
    "DeadLetterEntry",
    "DeadLetterPage",
    "DeadLetters",
    "DecodeError",
    "DelayedMover",
    "DlqOptions",
    "GroupInfo",
    "HealthChecker",
    "Housekeeper",
    "InvalidName",
    "Keys",
    "MQOptions",
    "Message",
    "Metrics",
    "PartitionInfo",
    "PartitionOutOfRange",
    "PayloadTooLarge",
    "PendingEntry",
    "Producer",
    "ProducerRecord",
    "RedisStreamingError",
    "RedisUnavailable",
    "Registration",
    "RegistryOptions",
    "RegistrySweeper",
    "Retry",
    "RetryPolicy",
    "SendResult",
    "ServiceDiscovery",
    "ServiceEvent",
    "ServiceEventType",
    "ServiceInstance",
    "ServiceRegistry",
    "ServiceWatch",
    "Subscription",
    "SubscriptionState",
    "TopicGauges",
    "TopicInfo",
    "TopicMeta",
    "TopicNotFound",
    "TopicStore",
    "__version__",
    "partition_for_key",
    "validate_name",
]
