"""``redis-streaming run examples.testing.main:app`` (settings from the environment)."""

from examples.testing.checkout import create_app

app = create_app()
