"""Consuming: the ``Consumer`` and its subscriptions; per subscription a coordinator
(membership, fair assignment, leases) and one worker per owned partition (claim, read, deliver,
acknowledge). Modules starting with ``_`` are used only inside this package."""
