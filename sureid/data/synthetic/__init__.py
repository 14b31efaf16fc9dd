"""Synthetic occluded person re-identification benchmark in the Occluded-DukeMTMC layout.

Procedurally rendered pedestrians (numpy + PIL) whose identity lives only in their appearance:
clothing colours and patterns, proportions, hair, shoes and accessories. Pose, view, scale,
position, lighting, blur and noise vary per image; each camera has its own background style and
colour cast; query images are occluded by objects or by other pedestrians. The files are written
exactly like Occluded-Duke (``bounding_box_train/``, ``query/``, ``bounding_box_test/``, names
``0001_c2_f0046182.jpg``), so the real dataset reader and the real file I/O are exercised.

Modules: ``config`` (settings and presets), ``identity`` (appearance sampling), ``person``
(drawing a pedestrian), ``scene`` (camera backgrounds and one composed image), ``occluders``
(objects and pedestrians in front of the person), ``plan`` (which images exist) and ``writer``
(files, manifest, atomic install).

Example:
    >>> from sureid.data.synthetic import make_synthetic_reid
    >>> summary = make_synthetic_reid("data/synth", preset="smoke")  # doctest: +SKIP
    >>> summary.query.num_images  # doctest: +SKIP
    32
"""

from .config import SYNTHETIC_PRESETS, SyntheticConfig
from .writer import (
    GENERATOR_VERSION,
    MANIFEST_NAME,
    SplitCounts,
    SyntheticReIDSummary,
    make_synthetic_reid,
    summarize_reid_folder,
)

__all__ = [
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "SYNTHETIC_PRESETS",
    "SplitCounts",
    "SyntheticConfig",
    "SyntheticReIDSummary",
    "make_synthetic_reid",
    "summarize_reid_folder",
]
