from __future__ import annotations

from dependency_injector.wiring import Provide

from redis_streaming import DeadLetter, Producer, ProducerRecord, RetryPolicy
from redis_streaming_starter import listener
from tests.starter.apps.tested import Greeter, GreeterContainer

late: list[str] = []


@listener("names", group="greeting", retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.05))
async def greet(
    name: str,
    greeter: Greeter = Provide[GreeterContainer.greeter],
    producer: Producer = Provide[GreeterContainer.producer],
) -> None:
    """``fail`` fails twice (retried once, then dead-lettered), ``reject`` is dead-lettered at
    once; any other name is greeted on ``greetings``."""
    if name == "fail":
        raise ValueError("cannot greet fail")
    if name == "reject":
        raise DeadLetter("rejected")
    await producer.send("greetings", greeter.greet(name), key=name, headers={"by": "greet"})


@listener("greetings", group="echo")
async def heard(text: str) -> None:
    """Receives what ``greet`` published: it reached Redis."""


@listener("names", group="late", start="latest", id="latecomer")
async def latecomer(name: str) -> None:
    late.append(name)


@listener("counts")
async def fan_out(count: int, producer: Producer = Provide[GreeterContainer.producer]) -> None:
    await producer.send_many("items", [ProducerRecord(i, key=f"k{i}") for i in range(count)])


@listener("names", group="audit")
@listener("greetings", group="audit")
async def audit(text: str) -> None:
    """Two listeners of one function: ``audit-names`` and ``audit-greetings``."""
