"""The orders quickstart: a producer, a billing listener and a shipping listener."""
