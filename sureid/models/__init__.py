"""sureid.models."""
