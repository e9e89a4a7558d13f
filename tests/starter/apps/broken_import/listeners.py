import no_such_module_anywhere  # noqa: F401  # the import error the test expects

from redis_streaming_starter import listener


@listener("a")
async def handle(x: dict) -> None:  # type: ignore[type-arg]
    pass
