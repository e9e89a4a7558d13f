from redis_streaming_starter import listener


@listener("orders", group="billing")
async def bill(x: dict) -> None:  # type: ignore[type-arg]
    pass


@listener("orders", group="billing", id="bill-again")
async def bill_again(x: dict) -> None:  # type: ignore[type-arg]
    pass
