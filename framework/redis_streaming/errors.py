"""Every exception the library raises.

All of them derive from :class:`RedisStreamingError`. Errors caused by wrong input or configuration
also derive from :class:`ValueError`, and every message says what to do about the problem.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "BatchFailed",
    "ConfigurationError",
    "DeadLetter",
    "DecodeError",
    "DurabilityError",
    "InvalidArgument",
    "InvalidName",
    "JobNotFound",
    "JobRunning",
    "PartitionOutOfRange",
    "PayloadTooLarge",
    "RedisStreamingError",
    "RedisUnavailable",
    "RequestFailed",
    "RequestTimeout",
    "Retry",
    "SourceError",
    "TopicNotFound",
]


class RedisStreamingError(Exception):
    """Root of every exception raised by redis-streaming."""


class ConfigurationError(RedisStreamingError, ValueError):
    """A setting or argument has a value the library cannot work with."""


class InvalidArgument(ConfigurationError):
    """An argument of a call cannot be used as given: a message key or headers that are not
    strings, a payload that cannot be encoded, a negative delay, a malformed dead-letter id.

    A :class:`ConfigurationError` (and ``ValueError``) so existing handlers keep catching it.
    """


class InvalidName(ConfigurationError):
    """A topic, group, consumer or namespace name is outside ``[A-Za-z0-9._-]{1,200}``."""


class TopicNotFound(RedisStreamingError, LookupError):
    """The topic does not exist: sending or subscribing with automatic topic creation off, or
    an admin operation (which never creates topics) on a topic that is not there."""

    def __init__(self, topic: str, *, auto_create_off: bool = True) -> None:
        create = f"Admin.create_topic or `redis-streaming topics create {topic}`"
        if auto_create_off:
            message = (
                f"topic {topic!r} does not exist and mq.auto_create_topics is off; create it "
                f"first ({create}) or turn auto-creation on "
                "(REDIS_STREAMING_MQ__AUTO_CREATE_TOPICS=true)"
            )
        else:
            message = (
                f"topic {topic!r} does not exist; check the name against the topics there are "
                f"(Admin.list_topics or `redis-streaming topics list`) or create it ({create})"
            )
        super().__init__(message)
        self.topic = topic


class PartitionOutOfRange(ConfigurationError):
    """An explicit partition number is not in ``0 .. partitions - 1`` of the topic."""

    def __init__(self, topic: str, partition: int, partitions: int) -> None:
        super().__init__(
            f"partition {partition} does not exist in topic {topic!r}, which has {partitions} "
            f"partitions (0..{partitions - 1}); pass a partition in that range, or grow the topic "
            "with Admin.add_partitions"
        )
        self.topic = topic
        self.partition = partition
        self.partitions = partitions


class PayloadTooLarge(ConfigurationError):
    """An encoded payload exceeds ``mq.max_payload_bytes``; nothing was written."""

    def __init__(self, topic: str, size: int, limit: int) -> None:
        super().__init__(
            f"payload for topic {topic!r} is {size} bytes, over the limit of {limit} bytes "
            "(mq.max_payload_bytes); nothing was sent. Store large bodies elsewhere and send a "
            "reference, or raise the limit with REDIS_STREAMING_MQ__MAX_PAYLOAD_BYTES"
        )
        self.topic = topic
        self.size = size
        self.limit = limit


class DecodeError(RedisStreamingError, ValueError):
    """A stream entry or its payload cannot be decoded (bad JSON, bad UTF-8, missing field)."""


class RedisUnavailable(RedisStreamingError, ConnectionError):
    """Redis could not be reached or did not answer in time.

    Raised by calls that talk to Redis once (``Producer.send``, admin calls). Long-running
    components (consumers, movers) do not raise it: they back off and resume by themselves.
    Whether a write that failed this way reached the server is unknown: retrying may duplicate it,
    which at-least-once consumers must tolerate anyway.
    """


class DurabilityError(RedisStreamingError):
    """A write went through on the master, but fewer copies than the durability level asks for
    confirmed it in time (``WAIT`` / ``WAITAOF``, see ``mq.durability``).

    The write is *not* undone: it stays on the master, and it survives unless the master fails
    before a replica (or its disk) has it. Retrying the call may therefore write it twice, which
    at-least-once consumers tolerate anyway. ``acknowledged`` is how many replicas confirmed,
    ``required`` how many the level asks for, ``written`` how many messages (or entries) the
    unconfirmed round trip wrote, ``fsynced_locally`` (``aof`` levels only, else None) whether
    the master's own append-only file has them.
    """

    def __init__(
        self,
        doing: str,
        level: str,
        written: int,
        *,
        acknowledged: int,
        required: int,
        timeout_ms: int,
        fsynced_locally: bool | None = None,
    ) -> None:
        if fsynced_locally is None:
            got = (
                f"{acknowledged} of the {required} replica(s) it asks for acknowledged "
                f"{written} write(s) within {timeout_ms} ms (WAIT)"
            )
        else:
            disk = "has" if fsynced_locally else "has NOT"
            got = (
                f"the master {disk} fsynced {written} write(s) to its append-only file and "
                f"{acknowledged} of the {required} replica(s) it asks for have, within "
                f"{timeout_ms} ms (WAITAOF)"
            )
        super().__init__(
            f"durability {level!r} not reached {doing}: {got}. The write went through on the "
            "master and is lost only if the master fails before a replica copies it; retrying "
            "may write it twice. Check that the replicas are up and in sync (INFO replication), "
            "or raise mq.durability_timeout_ms"
        )
        self.level = level
        self.written = written
        self.acknowledged = acknowledged
        self.required = required
        self.fsynced_locally = fsynced_locally


class RequestTimeout(RedisStreamingError, TimeoutError):
    """No reply came to :meth:`Producer.request <redis_streaming.Producer.request>` within its
    ``timeout``. The request was sent and may still be handled (and answered, too late)."""

    def __init__(self, topic: str, timeout_s: float) -> None:
        super().__init__(
            f"no reply to the request sent to topic {topic!r} within {timeout_s:g} s; check "
            f"that a listener of {topic!r} is running (its message may be waiting in a "
            "backlog or between retries), or pass a longer timeout="
        )
        self.topic = topic
        self.timeout_s = timeout_s


class RequestFailed(RedisStreamingError):
    """The request of :meth:`Producer.request <redis_streaming.Producer.request>` was
    answered with an error (its message was dead-lettered; ``reason`` says why), or the
    reply can no longer come (the producer was closed, its replies could not be read)."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"the request sent to topic {topic!r} failed: {reason}")
        self.topic = topic
        self.reason = reason


class Retry(RedisStreamingError):
    """Raise from a handler to retry the message, after ``after`` seconds when given.

    Without ``after`` the subscription's retry policy picks the delay. The attempt counts against
    ``max_attempts``; once they are used up the message is dead-lettered (reason
    ``max_attempts``).
    """

    def __init__(self, after: float | None = None, reason: str = "") -> None:
        super().__init__(reason or (f"retry requested after {after}s" if after else "retry"))
        self.after = after


class DeadLetter(RedisStreamingError):
    """Raise from a handler to send the message straight to the dead-letter stream.

    The entry is recorded with reason ``rejected`` and ``reason`` as its error text; it is not
    retried.
    """

    def __init__(self, reason: str = "rejected by handler") -> None:
        super().__init__(reason)
        self.reason = reason


class BatchFailed(RedisStreamingError):
    """Raise from a batch handler when some members of the batch failed and the others did not.

    ``failures`` maps the id (``message.id``) of each failed member to the exception it failed
    with. Those members are retried or dead-lettered one by one, as if a single-message handler
    had raised that exception: ``Retry(after=...)`` retries after that delay, ``DeadLetter``
    dead-letters as ``rejected``, a non-retryable exception as ``non_retryable``,
    ``DecodeError`` as ``undecodable``, and the last attempt as ``max_attempts``. Every other
    member of the batch is acknowledged. Ids that name no member of the batch are logged and
    ignored. A ``failures`` that is not such a mapping raises :class:`InvalidArgument` here, so
    the handler raises that instead and the whole batch is retried: nothing is acknowledged by
    mistake.
    """

    def __init__(self, failures: Mapping[str, Exception]) -> None:
        if not isinstance(failures, Mapping):
            raise InvalidArgument(
                f"BatchFailed takes a mapping of message id to exception, not "
                f"{type(failures).__name__}; raise BatchFailed({{message.id: exc, ...}})"
            )
        for mid, exc in failures.items():
            if not isinstance(mid, str) or not isinstance(exc, Exception):
                raise InvalidArgument(
                    "BatchFailed maps each failed member's id (message.id, a str) to the "
                    f"exception it failed with; got {mid!r}: {exc!r}. Raise "
                    "BatchFailed({message.id: exc, ...})"
                )
        self.failures: dict[str, Exception] = dict(failures)
        shown = ", ".join(
            f"{mid} ({type(e).__name__}: {e})" for mid, e in list(failures.items())[:5]
        )
        more = ", ..." if len(failures) > 5 else ""
        super().__init__(f"{len(failures)} member(s) of the batch failed: {shown}{more}")


class SourceError(RedisStreamingError):
    """A source (:mod:`redis_streaming.source`, :mod:`redis_streaming.cdc`) cannot go on without
    losing or repeating data: its replication slot or publication was dropped, a captured table
    lost its primary key. The runner stops with it (``SourceRunner.wait()`` raises it) instead of
    retrying; the message says what to do. Passing outages (a database restarting) are retried.
    """


class JobNotFound(RedisStreamingError, LookupError):
    """No job of that name has run on the namespace (the job catalogue does not list it)."""


class JobRunning(RedisStreamingError):
    """The operation needs the job stopped (a reset), and some process owns a partition of it."""
