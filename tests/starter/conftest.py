from __future__ import annotations

import pytest

from redis_streaming_starter import Settings


@pytest.fixture
def settings(rs_server_url: str, rs_namespace: str) -> Settings:
    """Settings for a test: the suite's server, a fresh namespace, fast rebalancing."""
    return Settings.model_validate(
        {
            "app": {"name": "testapp"},
            "redis": {"url": rs_server_url},
            "mq": {
                "namespace": rs_namespace,
                "lease_ttl_s": 3.0,
                "rebalance_interval_s": 0.5,
                "block_ms": 300,
                "shutdown_timeout_s": 5.0,
            },
        }
    )
