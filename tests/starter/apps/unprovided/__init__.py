from redis_streaming_starter import listener


class Orphan:
    @listener("a")
    async def handle(self, x: dict) -> None:  # type: ignore[type-arg]
        pass
