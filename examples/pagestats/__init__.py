"""Page statistics per second on event-time windows: ``python -m examples.pagestats``."""
