"""The join tests run with the fast lease and blocking settings (a job stops in well under a
second)."""

from __future__ import annotations

import pytest

from redis_streaming import MQOptions
from tests.helpers import fast_mq


@pytest.fixture
def rs_options(rs_namespace: str) -> MQOptions:
    """``MQOptions`` of the test's namespace with the ``FAST`` values."""
    return fast_mq(rs_namespace)
