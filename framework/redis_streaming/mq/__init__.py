"""Messaging on Redis Streams, by concern:

- ``options``, ``keys``, ``topics``: settings, the key layout, topic metadata;
- ``producer``: sending;
- ``consume/``: the consumer, its subscriptions, coordination and partition workers;
- ``retry/``: retry policy, retry mover, dead-letter writer;
- ``maintenance/``: the delayed-message mover and the retention housekeeper;
- ``admin/``: topic administration, dead-letter browsing and replay, the observable gauges;
- ``wire/``: stream-entry fields, envelopes, message types, trace context;
- ``scripts/``: the Lua scripts.

Users import from :mod:`redis_streaming`.
"""
