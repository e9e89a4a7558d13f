"""Order enrichment with a stream-table join: ``python -m examples.enrichment``."""
