"""sureid.data: dataset readers, an image Dataset and the P x K identity sampler."""

from .datasets import (
    DATASETS,
    ImageRecord,
    ReIDDataset,
    build_dataset,
    detect_layout,
    read_dukemtmc,
    read_market1501,
    read_occluded_duke,
    read_occluded_reid,
    read_partial_reid,
)
from .image_dataset import ImageDataset
from .sampler import RandomIdentitySampler
from .synthetic import (
    SYNTHETIC_PRESETS,
    SyntheticConfig,
    make_synthetic_reid,
    summarize_reid_folder,
)

__all__ = [
    "DATASETS",
    "ImageDataset",
    "ImageRecord",
    "RandomIdentitySampler",
    "ReIDDataset",
    "SYNTHETIC_PRESETS",
    "SyntheticConfig",
    "build_dataset",
    "detect_layout",
    "make_synthetic_reid",
    "read_dukemtmc",
    "read_market1501",
    "read_occluded_duke",
    "read_occluded_reid",
    "read_partial_reid",
    "summarize_reid_folder",
]
