from __future__ import annotations

import os

import pytest

from redis_streaming_starter import Settings
from tests.helpers import fast_settings


@pytest.fixture
def settings(rs_server_url: str, rs_namespace: str) -> Settings:
    """Settings for a test: the suite's server, a fresh namespace, fast rebalancing."""
    return fast_settings(rs_server_url, rs_namespace, app={"name": "testapp"})


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, rs_server_url: str, rs_namespace: str) -> str:
    """The command line's environment in this process: the suite's server and the test's
    namespace, no other REDIS_STREAMING_* variable. Returns the namespace."""
    for name in [n for n in os.environ if n.upper().startswith("REDIS_STREAMING_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REDIS_STREAMING_REDIS__URL", rs_server_url)
    monkeypatch.setenv("REDIS_STREAMING_MQ__NAMESPACE", rs_namespace)
    return rs_namespace
