"""The public API is pinned: changing it must be a deliberate edit of this test."""

import redis_streaming
import redis_streaming_starter


def test_framework_exports_are_pinned_and_sorted() -> None:
    assert redis_streaming.__all__ == sorted(redis_streaming.__all__)
    assert redis_streaming.__all__ == [
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
    for name in redis_streaming.__all__:
        obj = getattr(redis_streaming, name)
        if callable(obj):
            assert obj.__doc__, f"{name} has no docstring"


def test_starter_exports_are_pinned_and_sorted() -> None:
    assert redis_streaming_starter.__all__ == [
        "Container",
        "Header",
        "Headers",
        "RedisStreamingApplication",
        "Settings",
        "StartupError",
        "job",
        "listener",
        "load_settings",
        "resolve",
    ]
    for name in redis_streaming_starter.__all__:
        assert getattr(redis_streaming_starter, name).__doc__, f"{name} has no docstring"


def test_configuration_errors_are_value_errors() -> None:
    names = ("InvalidArgument", "InvalidName", "PayloadTooLarge", "PartitionOutOfRange")
    for name in ("ConfigurationError", *names):
        cls = getattr(redis_streaming, name)
        assert issubclass(cls, ValueError)
        assert issubclass(cls, redis_streaming.RedisStreamingError)
