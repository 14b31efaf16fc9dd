"""Occluder images for NODA: a bank, a procedural drawer and the folder writer.

The paper pastes crops of real-world occluders (bins, bikes, trees, poles, ...). Point
:class:`OccluderBank` / :class:`~sureid.transforms.NODA` at a folder of such crops (RGBA
PNGs with a transparent background are best). :func:`make_procedural_occluders` draws
synthetic stand-ins for tests, examples and the synthetic benchmark; they are not a
substitute for real crops. :func:`save_occluders` writes occluders as a folder the bank
loads.

Modules: ``bank`` (:class:`OccluderBank`), ``procedural`` (:func:`make_procedural_occluders`)
and ``folder`` (:func:`save_occluders` and the manifest the bank checks).
"""

from ..._image_files import IMAGE_EXTENSIONS
from .bank import OccluderBank
from .folder import save_occluders
from .procedural import PROCEDURAL_KINDS, make_procedural_occluders

__all__ = [
    "IMAGE_EXTENSIONS",
    "PROCEDURAL_KINDS",
    "OccluderBank",
    "make_procedural_occluders",
    "save_occluders",
]
