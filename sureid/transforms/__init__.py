"""sureid.transforms."""
