from redis_streaming_starter import listener


@listener("a", id="same")
async def one(x: dict) -> None:  # type: ignore[type-arg]
    pass


@listener("b", id="same")
async def two(x: dict) -> None:  # type: ignore[type-arg]
    pass
