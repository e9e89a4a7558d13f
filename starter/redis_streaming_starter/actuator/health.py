"""Health: components (redis, mq, ...) aggregated as Spring Boot Actuator does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoPermissionError

__all__ = [
    "Health",
    "HealthRegistry",
    "aggregate",
    "mq_health",
    "redis_health",
    "registry_health",
    "sentinel_health",
]

UP, DOWN, OUT_OF_SERVICE, UNKNOWN = "UP", "DOWN", "OUT_OF_SERVICE", "UNKNOWN"
PING_CHECK = "PING (this Redis user may not run INFO)"
_ORDER = {DOWN: 0, OUT_OF_SERVICE: 1, UP: 2, UNKNOWN: 3}


@dataclass
class Health:
    """One component's status and details; a composite component has sub-``components``."""

    status: str
    details: dict[str, Any] = field(default_factory=dict)
    components: dict[str, Health] = field(default_factory=dict)

    def body(self, details: bool) -> dict[str, Any]:
        """The JSON node: ``{"status": ..., "details": {...}, "components": {...}}``; without
        ``details`` just ``{"status": ...}`` (Spring hides components with the details)."""
        node: dict[str, Any] = {"status": self.status}
        if details and self.details:
            node["details"] = self.details
        if details and self.components:
            node["components"] = {n: h.body(True) for n, h in self.components.items()}
        return node


Check = Callable[[], Awaitable[Health]]


class HealthRegistry:
    """Named health checks; the aggregate is the worst status (DOWN if any component is DOWN).

    Every check runs with a time limit of ``timeout_s`` seconds: one that takes longer, or
    raises, is DOWN with the error, so a health request never waits on a hung server.
    """

    def __init__(self, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self._checks: dict[str, Check] = {}

    def register(self, name: str, check: Check) -> None:
        """Add (or replace) the component ``name``."""
        self._checks[name] = check

    @property
    def names(self) -> list[str]:
        """Registered component names, sorted."""
        return sorted(self._checks)

    async def check(self, name: str) -> Health:
        """Run one check (``KeyError`` for an unknown name); raising or timing out is DOWN."""
        run = self._checks[name]
        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                return await run()
        except TimeoutError as exc:
            if deadline.expired():
                return Health(DOWN, {"error": f"health check timed out after {self.timeout_s}s"})
            return Health(DOWN, {"error": f"{type(exc).__name__}: {exc}"})
        except Exception as exc:
            return Health(DOWN, {"error": f"{type(exc).__name__}: {exc}"})

    async def check_all(self, names: Iterable[str] | None = None) -> tuple[str, dict[str, Health]]:
        """(aggregate status, component results) of ``names`` (default: all), concurrently."""
        selected = self.names if names is None else [n for n in names if n in self._checks]
        results = await asyncio.gather(*(self.check(n) for n in selected))
        components = dict(zip(selected, results, strict=True))
        return aggregate(h.status for h in components.values()), components


def aggregate(statuses: Iterable[str]) -> str:
    """The worst status (DOWN < OUT_OF_SERVICE < UP < UNKNOWN); UP when there is none.

    Unknown custom statuses rank with UNKNOWN, as in Spring's default order.
    """
    worst = UP
    for status in statuses:
        if _ORDER.get(status, 3) < _ORDER.get(worst, 3):
            worst = status
    return worst


def redis_health(get_redis: Callable[[], Any]) -> Check:
    """INFO server; UP with its version and mode, DOWN with the error.

    With a cluster client: ``CLUSTER INFO`` and ``INFO server`` of every primary; UP while the
    cluster state is ``ok`` and every primary answers, with the state, slot counts and each
    primary's version in the details.

    With a Sentinel-managed client (``redis.sentinel``): mode ``sentinel``, the master's name
    and address as the Sentinels report it, and its replicas as the master reports them
    (``ROLE``: address and replication offset, ``lagBytes`` behind the master); UP while the
    node the client reaches answers as the master.

    A Redis user that may not run INFO (a hardened ACL, ``-@dangerous``) is checked with PING
    instead (of every primary, for a cluster): UP when it answers, the version unknown.
    """
    from redis_streaming.cluster import is_cluster
    from redis_streaming_starter.autoconfigure.sentinel import is_sentinel

    async def cluster(redis: Any) -> Health:
        state = await redis.cluster_info()  # the cluster's view, from one node
        infos = await redis.info("server", target_nodes=redis.PRIMARIES)  # {node name: INFO}
        nodes = {name: server_info(info)["version"] for name, info in sorted(infos.items())}
        details = {
            "version": next(iter(nodes.values()), None),
            "mode": "cluster",
            "clusterState": state.get("cluster_state"),
            "slotsOk": int(state.get("cluster_slots_ok", 0)),
            "slotsFail": int(state.get("cluster_slots_fail", 0)),
            "knownNodes": int(state.get("cluster_known_nodes", 0)),
            "primaries": nodes,
        }
        return Health(UP if details["clusterState"] == "ok" else DOWN, details)

    async def check() -> Health:
        redis = get_redis()
        if redis is None:
            return Health(DOWN, {"error": "not connected yet"})
        try:
            try:
                if is_cluster(redis):
                    return await cluster(redis)
                if is_sentinel(redis):
                    return await sentinel_health(redis)
                return Health(UP, server_info(await redis.info("server")))
            except NoPermissionError:
                await redis.ping(**({"target_nodes": redis.PRIMARIES} if is_cluster(redis) else {}))
                return Health(UP, {"version": None, "mode": None, "check": PING_CHECK})
        except Exception as exc:
            return Health(DOWN, {"error": f"{type(exc).__name__}: {exc}"})

    return check


async def sentinel_health(redis: Any) -> Health:
    """The ``redis`` component of a Sentinel-managed client (see :func:`redis_health`). A user
    that may not run ``INFO`` or ``ROLE`` (hardened ACLs drop both) gets the version unknown
    and the replicas the Sentinels know, without offsets."""
    from redis_streaming_starter.autoconfigure.sentinel import sentinel_of

    manager, name = sentinel_of(redis)
    host, port = await manager.discover_master(name)
    try:
        details: dict[str, Any] = server_info(await redis.info("server"))
    except NoPermissionError:
        await redis.ping()
        details = {"version": None, "check": PING_CHECK}
    details.update(mode="sentinel", masterName=name, master=f"{_text(host)}:{port}")
    try:
        role = await redis.execute_command("ROLE")
    except NoPermissionError:
        known = await manager.discover_replicas(name)
        details["replicas"] = [{"address": f"{_text(h)}:{_text(p)}"} for h, p in known]
        return Health(UP, details)
    details["role"] = _text(role[0])
    if details["role"] != "master":
        details["error"] = "the node the client reaches is not the master (a failover under way?)"
        return Health(DOWN, details)
    offset = int(role[1])
    details["replicas"] = [
        {
            "address": f"{_text(ip)}:{_text(rport)}",
            "offset": int(roffset),
            "lagBytes": max(0, offset - int(roffset)),
        }
        for ip, rport, roffset in role[2]
    ]
    return Health(UP, details)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def server_info(info: dict[str, Any]) -> dict[str, Any]:
    """``{"version", "mode"}`` from an ``INFO server`` reply (Valkey reports both versions)."""
    version = info.get("valkey_version") or info.get("redis_version")
    return {
        "version": str(version) if version else None,
        "mode": info.get("redis_mode", "standalone"),
    }


def mq_health(get_consumer: Callable[[], Any], is_running: Callable[[], bool]) -> Check:
    """UP while the consumer runs and its coordination rounds succeed."""

    async def check() -> Health:
        consumer = get_consumer()
        if consumer is None or not is_running():
            return Health(OUT_OF_SERVICE, {"reason": "listeners are not running"})
        listeners = {
            s.id: {
                "topic": s.topic,
                "group": s.group,
                "state": s.state.value,
                "ownedPartitions": s.owned_partitions,
                "inFlight": s.in_flight,
                "processed": s.processed,
                "lastError": s.last_error,
            }
            for s in consumer.subscriptions
        }
        status = UP if consumer.healthy or not listeners else DOWN
        return Health(status, {"consumerId": consumer.consumer_id, "listeners": listeners})

    return check


def registry_health(get_registration: Callable[[], Any]) -> Check:
    """UP while this application's registration heartbeats; DOWN with the last error."""

    async def check() -> Health:
        registration = get_registration()
        if registration is None or not registration.running:
            return Health(
                OUT_OF_SERVICE, {"reason": "not registered (the application is not running)"}
            )
        instance = registration.instance
        details = {
            "service": instance.service,
            "instanceId": instance.instance_id,
            "address": f"{instance.host}:{instance.port}",
            "heartbeats": registration.heartbeats,
            "reregistrations": registration.reregistrations,
        }
        if registration.last_error is not None:
            error = registration.last_error
            return Health(DOWN, {**details, "error": f"{type(error).__name__}: {error}"})
        return Health(UP, details)

    return check


def runtime_health(jobs: Any, is_running: Callable[[], bool]) -> Check:
    """The application's ``@job`` s: DOWN when a job has failed (its start raised) or a
    running job's coordination rounds fail; details per job with each stage's last error."""

    async def check() -> Health:
        if not is_running():
            return Health(OUT_OF_SERVICE, {"reason": "jobs are not running"})
        details: dict[str, Any] = {}
        down = False
        for name, app_job in jobs.jobs.items():
            handle = app_job.handle
            coordinating = handle is None or all(c.last_tick_ok for c in handle.coordinators)
            if app_job.failed or (app_job.state in ("running", "paused") and not coordinating):
                down = True
            stages = {}
            if handle is not None:
                for st in handle.status().stages:
                    stages[st.group] = {
                        "topic": st.topic,
                        "ownedPartitions": st.owned_partitions,
                        "recordsIn": st.records_in,
                        "lastCommitMs": st.last_commit_ms,
                        "lastError": st.last_error,
                    }
            details[name] = {"state": app_job.state, "error": app_job.error, "stages": stages}
        return Health(DOWN if down else UP, {"jobs": details})

    return check
