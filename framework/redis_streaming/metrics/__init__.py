"""OpenTelemetry instruments of the framework (API only; the application installs an SDK).

The producer and the consumer record through :class:`Metrics`; the observable gauges read from
Redis are :class:`~redis_streaming.TopicGauges` (``redis_streaming.mq.admin.gauges``), which
belong with the admin reads they share.
"""

from redis_streaming.metrics.instruments import Metrics, PartitionLabels, default_metrics

__all__ = ["Metrics", "PartitionLabels", "default_metrics"]
