"""redis-streaming: partitioned topics, consumer groups, retries and dead letters on Redis Streams.

The framework is usable on its own from any asyncio program: build components with a
``redis.asyncio`` client (replies as bytes, the default) and :class:`MQOptions`.
"""

from redis_streaming.errors import (
    ConfigurationError,
    DecodeError,
    InvalidName,
    PartitionOutOfRange,
    PayloadTooLarge,
    RedisStreamingError,
    RedisUnavailable,
    TopicNotFound,
)
from redis_streaming.mq.delayed import DelayedMover
from redis_streaming.mq.keys import Keys, validate_name
from redis_streaming.mq.message import Message, ProducerRecord, SendResult
from redis_streaming.mq.producer import Producer, partition_for_key
from redis_streaming.mq.topics import TopicMeta, TopicStore
from redis_streaming.options import MQOptions

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "DecodeError",
    "DelayedMover",
    "InvalidName",
    "Keys",
    "MQOptions",
    "Message",
    "PartitionOutOfRange",
    "PayloadTooLarge",
    "Producer",
    "ProducerRecord",
    "RedisStreamingError",
    "RedisUnavailable",
    "SendResult",
    "TopicMeta",
    "TopicNotFound",
    "TopicStore",
    "__version__",
    "partition_for_key",
    "validate_name",
]
