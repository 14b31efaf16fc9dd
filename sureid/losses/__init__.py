"""sureid.losses."""

from .npkd import NPKDLoss, interpolate_features, kd_kl_div
from .objective import SUReIDLoss, SUReIDLossOutput
from .ratio import RatioLoss
from .reid import (
    CrossEntropyLabelSmooth,
    TripletLoss,
    batch_hard_triplet_loss,
    label_smoothing_cross_entropy,
    pairwise_distance,
)

__all__ = [
    "CrossEntropyLabelSmooth",
    "NPKDLoss",
    "RatioLoss",
    "SUReIDLoss",
    "SUReIDLossOutput",
    "TripletLoss",
    "batch_hard_triplet_loss",
    "interpolate_features",
    "kd_kl_div",
    "label_smoothing_cross_entropy",
    "pairwise_distance",
]
