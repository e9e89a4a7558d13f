"""An existing FastAPI application that mounts the starter: its own routes, a listener, and
the actuator on one app."""
