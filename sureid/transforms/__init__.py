"""sureid.transforms: NODA, RandomPatch, random erasing and the dual-view (two-batch) scheme.

None of these import torchvision at import time; only :func:`reid_random_erasing` needs it.
"""

from .dual import DualBatch, DualViewDataset, dual_collate, paper_dual_views
from .noda import NODA, NODAParams
from .occluders import (
    PROCEDURAL_KINDS,
    OccluderBank,
    make_procedural_occluders,
    save_occluders,
)
from .random_patch import RandomPatch, reid_random_erasing

__all__ = [
    "NODA",
    "PROCEDURAL_KINDS",
    "DualBatch",
    "DualViewDataset",
    "NODAParams",
    "OccluderBank",
    "RandomPatch",
    "dual_collate",
    "make_procedural_occluders",
    "paper_dual_views",
    "reid_random_erasing",
    "save_occluders",
]
