"""The application tests/starter/test_testing_support.py tests with ``AppTest``: its own
settings section, a provider of its own, and listeners that publish."""

from __future__ import annotations

from dependency_injector import providers
from pydantic import BaseModel, Field

from redis_streaming_starter import Container, RedisStreamingApplication, Settings, listener


class Section(BaseModel):
    greeting: str = "hello"


class GreeterSettings(Settings):
    tested: Section = Field(default_factory=Section)


class Greeter:
    def __init__(self, settings: GreeterSettings) -> None:
        self.greeting = settings.tested.greeting

    def greet(self, name: str) -> str:
        return f"{self.greeting}, {name}"


class Ticker:
    """A provided class with a listener method."""

    def __init__(self) -> None:
        self.ticks: list[int] = []

    @listener("ticks")
    async def tick(self, n: int) -> None:
        self.ticks.append(n)


class GreeterContainer(Container):
    greeter = providers.Singleton(Greeter, settings=Container.settings)
    ticker = providers.Singleton(Ticker)


def create_app(settings: GreeterSettings | None = None) -> RedisStreamingApplication:
    return RedisStreamingApplication(
        settings=settings,
        container=GreeterContainer,
        listener_packages=["tests.starter.apps.tested.listeners"],
    )
