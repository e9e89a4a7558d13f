"""Names for code that builds on the framework, as the starter does: each is stable and
documented, but applications do not need them (they import from :mod:`redis_streaming`).

The starter imports from :mod:`redis_streaming`, this module, and the public modules
``cluster``, ``embedded``, ``metrics`` and ``registry``; an import-linter contract forbids its
reaching deeper, so the framework's internals can move without breaking it.
"""

from redis_streaming._redis.background import cancel_and_wait
from redis_streaming._redis.errors import is_connection_error, tls_problem, unavailable
from redis_streaming._redis.names import NAME_PATTERN, validate_name
from redis_streaming.mq.admin.dead_letters import validate_entry_id
from redis_streaming.mq.consume.consumer import default_consumer_id
from redis_streaming.mq.durability import require_support as require_durability_support
from redis_streaming.mq.options import names_list
from redis_streaming.mq.topics import TopicMeta

__all__ = [
    "NAME_PATTERN",
    "TopicMeta",
    "cancel_and_wait",
    "default_consumer_id",
    "is_connection_error",
    "names_list",
    "require_durability_support",
    "tls_problem",
    "unavailable",
    "validate_entry_id",
    "validate_name",
]
