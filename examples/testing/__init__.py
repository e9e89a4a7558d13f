"""A checkout application and its test suite (``tests/``): what ``rs_app`` is for."""
