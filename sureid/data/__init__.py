"""sureid.data."""
