"""sureid.losses."""
