pytest_plugins = ["redis_streaming_starter.testing_plugin"]
