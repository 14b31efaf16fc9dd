"""sureid.metrics."""
