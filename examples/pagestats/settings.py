"""The example's settings: the starter's sections (``REDIS_STREAMING_REDIS__URL``,
``REDIS_STREAMING_MQ__NAMESPACE``, ``REDIS_STREAMING_MQ__LEASE_TTL_S``...) plus its own
``pagestats`` section (``REDIS_STREAMING_PAGESTATS__PARTITIONS``...). The Redis client and the
``MQOptions`` are the word count example's."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from examples.pagestats.job import PARTITIONS
from examples.wordcount.settings import connect, mq_options
from redis_streaming_starter import Settings, load_settings

__all__ = ["PagestatsSection", "PagestatsSettings", "connect", "mq_options", "read_settings"]


class PagestatsSection(BaseModel):
    """The job's own knobs."""

    model_config = ConfigDict(extra="forbid")

    partitions: int = Field(PARTITIONS, ge=1, description="Partitions of every topic it uses.")
    batch_size: int = Field(100, ge=1, description="Entries read and committed per batch.")


class PagestatsSettings(Settings):
    """The starter's settings with the ``pagestats`` section."""

    pagestats: PagestatsSection = Field(default_factory=PagestatsSection)


def read_settings() -> PagestatsSettings:
    """Settings from the environment (and ``application.yaml``); bad values raise naming the
    variable."""
    return load_settings(settings_cls=PagestatsSettings, defaults={"app": {"name": "pagestats"}})
