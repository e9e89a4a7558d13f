"""A sample application for the starter tests."""
