"""Kept for old imports: :class:`~sureid.models.ReIDModel` lives in ``sureid.models``."""

from ..models.reid_model import ReIDModel, ReIDTrainOutput

__all__ = ["ReIDModel", "ReIDTrainOutput"]
