"""sureid.losses."""

from .ratio import RatioLoss

__all__ = [
    "RatioLoss",
]
