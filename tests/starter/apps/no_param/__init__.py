from redis_streaming_starter import listener


@listener("a")
async def nothing() -> None:
    pass
