"""Every Redis key of the stream-processing runtime (docs/design.md, "Stream-processing runtime").

A task's keys carry its input partition's hash tag ``{T:i}``, so the commit script touches one
Redis Cluster slot: the partition stream, its lease, the task hash, the state hashes and TTL
indexes of its stores and its outbox. Only the forwarder's high-water marks live in the *target*
partition's slot, beside the stream they guard.
"""

from __future__ import annotations

from redis_streaming.errors import InvalidArgument
from redis_streaming.mq.keys import Keys

__all__ = ["RuntimeKeys", "hash_tag"]


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes of ``key``: the text between its first ``{`` and the first
    ``}`` after it when not empty, else the whole key. Raises :class:`InvalidArgument` for a
    key without a hash tag that holds a ``}`` (no other key can be put in its slot by name)."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    if "}" in key:
        raise InvalidArgument(
            f"the Redis key {key!r} holds a '}}' but no hash tag; give it one ({{...}}) or "
            "drop the brace"
        )
    return key


class RuntimeKeys:
    """Builds the runtime's keys of one namespace; names must already be validated."""

    __slots__ = ("mq", "namespace")

    def __init__(self, namespace: str = "rs") -> None:
        self.mq = Keys(namespace)
        self.namespace = self.mq.namespace

    def task(self, topic: str, partition: int, stage: str) -> str:
        """HASH of one stage's task on one input partition: ``frontier`` (last committed entry
        id), ``epoch`` (bumped by each new owner; fences older ones), ``committed_ms``."""
        return f"{self.namespace}:task:{{{topic}:{partition}}}:{stage}"

    def state(self, topic: str, partition: int, job: str, store: str) -> str:
        """HASH of one state store on one input partition: field = encoded key, value = encoded
        value (:mod:`redis_streaming.state.codec`)."""
        return f"{self.namespace}:state:{{{topic}:{partition}}}:{job}:{store}"

    def state_match(self, job: str, store: str) -> str:
        """``SCAN MATCH`` glob of one store's hashes on every partition."""
        return f"{self.namespace}:state:{{*}}:{job}:{store}"

    def ttl(self, topic: str, partition: int, job: str, store: str) -> str:
        """ZSET index of one store's keys that expire (member = encoded key, score = expiry ms)."""
        return f"{self.namespace}:ttl:{{{topic}:{partition}}}:{job}:{store}"

    def timers(self, topic: str, partition: int, stage: str) -> str:
        """ZSET of a task's event-time timers (member = encoded ``[operator, key]`` or
        ``[operator, key, name]``, score = the watermark at which it fires)."""
        return f"{self.namespace}:timers:{{{topic}:{partition}}}:{stage}"

    def wall_timers(self, topic: str, partition: int, stage: str) -> str:
        """ZSET of a task's wall-clock timers (as :meth:`timers`, score = epoch ms)."""
        return f"{self.namespace}:walltimers:{{{topic}:{partition}}}:{stage}"

    def outbox(self, topic: str, partition: int, stage: str) -> str:
        """STREAM of a task's committed outputs waiting to be forwarded (Redis Cluster only)."""
        return f"{self.namespace}:outbox:{{{topic}:{partition}}}:{stage}"

    def forwarded(self, topic: str, partition: int, job: str) -> str:
        """HASH in a *target* partition's slot: field = source task (``<stage>|<topic>:<i>``),
        value = the last outbox entry id appended here from it (deduplicates forwarding)."""
        return f"{self.namespace}:fwd:{{{topic}:{partition}}}:{job}"

    def forwarded_to(self, key: str, job: str) -> str:
        """HASH in the slot of any ``key`` a Redis sink writes on a cluster (beside it, by its
        :func:`hash_tag`): the forwarder's high-water marks, as :meth:`forwarded`. For a
        partition stream this is :meth:`forwarded` itself."""
        return f"{self.namespace}:fwd:{{{hash_tag(key)}}}:{job}"

    def source(self, name: str) -> str:
        """HASH of a source runner (:mod:`redis_streaming.source`): ``position`` (the last
        position whose records are all in their topics), ``meta`` (the source's own context,
        e.g. a CDC snapshot), ``owner``, ``updated_ms``."""
        return f"{self.namespace}:source:{{src:{name}}}"

    def source_lease(self, name: str) -> str:
        """STRING lease of a source runner (value = owner id, PX TTL); in the slot of
        :meth:`source`, so storing a position can check the lease atomically."""
        return f"{self.namespace}:srclease:{{src:{name}}}"

    def source_mark(self, topic: str, partition: int, name: str) -> str:
        """STRING in a topic partition's slot: the highest position of source ``name`` appended
        to that partition (appends at or below it are skipped: exactly-once across crashes)."""
        return f"{self.namespace}:srcpos:{{{topic}:{partition}}}:{name}"
