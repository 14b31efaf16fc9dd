"""sureid.engine."""
