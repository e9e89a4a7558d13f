"""OpenTelemetry metrics of the framework (API only; the application installs an SDK)."""

from redis_streaming.metrics.gauges import TopicGauges
from redis_streaming.metrics.instruments import Metrics, PartitionLabels, default_metrics

__all__ = ["Metrics", "PartitionLabels", "TopicGauges", "default_metrics"]
