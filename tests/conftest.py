"""Every test talks to a real server: see redis_streaming.testing.pytest_plugin."""

pytest_plugins = ["redis_streaming.testing.pytest_plugin"]
