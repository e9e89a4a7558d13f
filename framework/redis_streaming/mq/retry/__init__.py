"""What happens to a message whose handler failed: the retry policy, the mover that releases due
retries to the failing group, and the writer of dead letters."""
