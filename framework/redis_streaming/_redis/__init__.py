"""Private plumbing shared by the messaging (``mq``) and the registry: background loops with
backoff, Redis error classification, Lua scripts, reply decoding and the name rule.

Nothing here is imported by users or by the starter (an import-linter contract keeps it so);
what the starter needs is re-exported deliberately by :mod:`redis_streaming.integration`.
"""
