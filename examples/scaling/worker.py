"""One worker: ``redis-streaming run examples.scaling.worker:app``; start as many as you like
(each with its own REDIS_STREAMING_APP__PORT, all with the same REDIS_STREAMING_REDIS__URL).

The workers share the partitions of ``events``: each owns ``12 / workers`` of them. One that
dies (even by ``kill -9``) loses its partitions after ``mq.lease_ttl_s``, and the others take
them over at their next rebalance (every ``mq.rebalance_interval_s``).
"""

from __future__ import annotations

from examples.scaling.events import PARTITIONS
from redis_streaming_starter import RedisStreamingApplication, load_settings

app = RedisStreamingApplication(
    settings=load_settings(  # defaults: the environment can change each of them
        defaults={
            "app": {"name": "scaling"},
            "mq": {"default_partitions": PARTITIONS},
            "actuator": {"expose": ["health", "info", "listeners", "topics"]},
        }
    ),
    listener_packages=["examples.scaling.events"],
)
