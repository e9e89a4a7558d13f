"""Keyed state of stream-processing jobs, kept in Redis beside its partition."""
