"""Several worker processes of one application sharing a 12-partition topic."""
