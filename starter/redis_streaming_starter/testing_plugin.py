"""pytest plugin for testing applications: ``rs_app``, on top of the server fixtures.

Enable it in your top-level ``conftest.py``::

    pytest_plugins = ["redis_streaming_starter.testing_plugin"]

It loads ``redis_streaming.testing.pytest_plugin`` too (``rs_server_url``, ``rs_url``,
``rs_namespace``, ``rs_redis``, ``rs_server``...). ``rs_app`` is a factory of
:class:`~redis_streaming_starter.testing.AppTest` on the test's server, ``rs_url``: the
session's private server (or ``REDIS_URL``), or a Redis Cluster in the second run of a test
marked ``@pytest.mark.cluster``::

    async def test_an_order_is_billed(rs_app):
        async with rs_app(app) as t:
            await t.send("orders", Order(id="o-1", amount=12.5), key="c-7")
            await t.handled(bill)
"""

from __future__ import annotations

from typing import Any

import pytest

from redis_streaming_starter.testing import AppTest, AppTestFactory

__all__ = ["rs_app"]

pytest_plugins = ["redis_streaming.testing.pytest_plugin"]


@pytest.fixture
def rs_app(rs_url: str) -> AppTestFactory:
    """``rs_app(app, **options)``: an :class:`AppTest` (``async with``) of ``app`` on the test's
    server; the options are those of ``app_test``, ``url`` defaults to ``rs_url``."""

    def make(app: Any, **options: Any) -> AppTest:
        options.setdefault("url", rs_url)
        return AppTest(app, **options)

    return make
