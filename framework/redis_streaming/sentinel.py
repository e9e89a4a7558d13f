"""Redis Sentinel support: redis-py's ``Sentinel`` with master discovery that is safe to run
from many tasks at once (the starter's ``redis.sentinel`` client and the test support use it).

redis-py's ``Sentinel.discover_master`` moves the Sentinel that answered to the front of its
list by the position that Sentinel had *before* its await; when several tasks discover at once
(every connection a failover breaks reconnects, and each asks the Sentinels), one Sentinel
client ends up twice in the list and another drops out of it: it is never asked again and never
closed (its connections leak). This one swaps by identity, after the await.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.sentinel import MasterNotFoundError
from redis.asyncio.sentinel import Sentinel as _RedisSentinel
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

__all__ = ["Sentinel"]


class Sentinel(_RedisSentinel):
    """``redis.asyncio.sentinel.Sentinel`` whose ``discover_master`` keeps every Sentinel in
    its list when called concurrently (the same arguments and behaviour otherwise)."""

    async def discover_master(self, service_name: str) -> Any:
        """``(host, port)`` of the master of ``service_name`` as the first Sentinel that knows
        a healthy one reports it (that Sentinel is asked first next time);
        ``MasterNotFoundError`` naming every Sentinel's error otherwise."""
        errors = []
        for sentinel in list(self.sentinels):
            try:
                masters: Any = await sentinel.sentinel_masters()
            except (ConnectionError, ResponseError, TimeoutError) as exc:
                errors.append(f"{sentinel} - {exc!r}" + (f": {exc}" if str(exc) else ""))
                continue
            state = masters.get(service_name)
            if state and self.check_master_state(state, service_name):
                i = self.sentinels.index(sentinel)  # its position now, after the await
                self.sentinels[0], self.sentinels[i] = self.sentinels[i], self.sentinels[0]
                ip = self._force_master_ip if self._force_master_ip is not None else state["ip"]
                return ip, state["port"]
        detail = f" : {', '.join(errors)}" if errors else ""
        raise MasterNotFoundError(f"No master found for {service_name!r}{detail}")
