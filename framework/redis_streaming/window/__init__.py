"""Event time and windows: window kinds, the partition clock (watermark, idle advance) and
timers (docs/windows.md)."""

from redis_streaming.window import windows
from redis_streaming.window.kinds import Count, Hopping, Session, Sliding, Tumbling, WindowKind

__all__ = ["Count", "Hopping", "Session", "Sliding", "Tumbling", "WindowKind", "windows"]
