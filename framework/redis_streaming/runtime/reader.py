"""Reading a job's committed state from outside its tasks (tests, admin, the actuator)."""

from __future__ import annotations

from typing import Any

from redis_streaming._redis.names import validate_name
from redis_streaming.cluster import is_cluster
from redis_streaming.mq.options import MQOptions
from redis_streaming.runtime.keys import RuntimeKeys
from redis_streaming.state.codec import decode

__all__ = ["StateReader"]


class StateReader:
    """Reads the state stores of jobs: what their last commits wrote."""

    def __init__(self, redis: Any, options: MQOptions | None = None) -> None:
        self.redis = redis
        self.keys = RuntimeKeys((options or MQOptions()).namespace)

    async def _hashes(self, job: str, store: str) -> list[bytes]:
        match = self.keys.state_match(validate_name(job, "job"), validate_name(store, "store"))
        if is_cluster(self.redis):
            found: set[bytes] = set()
            for node in self.redis.get_primaries():
                async for key in self.redis.scan_iter(match=match, count=1000, target_nodes=node):
                    found.add(key)
            return sorted(found)
        return sorted({k async for k in self.redis.scan_iter(match=match, count=1000)})

    async def items(self, job: str, store: str) -> dict[Any, Any]:
        """Every key and value of ``store`` of ``job``, over all partitions (decoded; keys are
        the record keys: ``str``, or ``None`` for unkeyed records)."""
        out: dict[Any, Any] = {}
        for key in await self._hashes(job, store):
            for field, value in (await self.redis.hgetall(key)).items():
                out[decode(field)] = decode(value)
        return out

    async def stats(self, job: str, store: str) -> dict[int, tuple[int, int]]:
        """Per input partition: ``(keys, approximate bytes)`` of ``store`` of ``job``."""
        out: dict[int, tuple[int, int]] = {}
        for key in await self._hashes(job, store):
            tag = key.decode().split("{", 1)[1].split("}", 1)[0]
            partition = int(tag.rsplit(":", 1)[1])
            keys = int(await self.redis.hlen(key))
            size = int(await self.redis.memory_usage(key) or 0)
            out[partition] = (keys, size)
        return out
