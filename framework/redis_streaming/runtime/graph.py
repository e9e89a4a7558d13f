"""A job's stages: the operator trees cut at repartition points, each one consumer group."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis_streaming.runtime.operators import KeyBy, Node, Pass, To
from redis_streaming.runtime.records import ValueDecoder
from redis_streaming.state.stores import StoreSpec

__all__ = ["Stage"]


@dataclass(eq=False)
class Stage:
    """One stage of job ``job``: reads ``topic`` as group ``<job>.<id>`` and runs ``root``'s
    operator tree on each entry. ``internal``: the topic is the job's own repartition topic."""

    job: str
    id: str
    topic: str
    internal: bool
    value_type: Any = None
    root: Pass = field(default_factory=Pass)
    stores: dict[str, StoreSpec] = field(default_factory=dict)
    timestamp: Any = None  # the source's event-time extractor (None: the entry's ts)
    timer_ops: dict[str, Any] = field(default_factory=dict)  # operators with timers, by id
    lookups: list[Any] = field(default_factory=list)  # the tables its joins read
    ooo_ms: int = 0  # max_out_of_orderness of the stage's windows (the largest)
    idle_ms: int | None = None  # idle_timeout of the stage's windows (the smallest)
    sinks: list[Any] = field(default_factory=list)  # the sinks its records are written to

    @property
    def group(self) -> str:
        """The stage's consumer group (and the name its tasks and metrics carry)."""
        return f"{self.job}.{self.id}"

    def decoder(self) -> ValueDecoder:
        """Decodes the stage's input entries."""
        return ValueDecoder(self.value_type)

    def output_topics(self) -> tuple[set[str], set[str]]:
        """The topics the stage writes to: ``(external, internal)``."""
        external: set[str] = set()
        internal: set[str] = set()
        seen: set[int] = set()
        todo: list[Node] = [self.root]
        while todo:
            node = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, To):
                external.add(node.topic)
            elif isinstance(node, KeyBy):
                internal.add(node.topic)
            late_to = getattr(node, "late_to", None)  # a window's topic for late records
            if late_to is not None:
                external.add(late_to)
            todo.extend(node.next)
            for _, arm in getattr(node, "arms", ()):
                todo.append(arm)
        return external, internal
