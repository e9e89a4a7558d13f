"""Retries with backoff, dead letters, and replaying them once the handler is fixed."""
