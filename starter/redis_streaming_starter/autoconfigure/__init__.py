"""Auto-configuration, one module per feature; each builds its components from ``Settings``."""
