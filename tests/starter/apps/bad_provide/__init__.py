from typing import Any

from dependency_injector.wiring import Provide

from redis_streaming_starter import listener


@listener("a")
async def handle(x: dict, db: Any = Provide["nope"]) -> None:  # type: ignore[type-arg]
    pass
