"""Messaging on Redis Streams: keys, wire format, topics, producer, movers."""
