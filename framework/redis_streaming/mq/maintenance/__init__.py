"""Background work that keeps topics healthy: moving producer-delayed messages into their
streams when due, and the retention housekeeper."""
