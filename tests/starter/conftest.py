from __future__ import annotations

import pytest

from redis_streaming_starter import Settings
from tests.helpers import fast_settings


@pytest.fixture
def settings(rs_server_url: str, rs_namespace: str) -> Settings:
    """Settings for a test: the suite's server, a fresh namespace, fast rebalancing."""
    return fast_settings(rs_server_url, rs_namespace, app={"name": "testapp"})
