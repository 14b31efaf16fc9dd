"""The file extensions sureid reads as images: the dataset readers, ``read_custom``,
``FeatureExtractor`` folders and ``OccluderBank`` folders all use this one list."""

from __future__ import annotations

__all__ = ["IMAGE_EXTENSIONS"]

# lower case; every one is a format Pillow decodes without plugins
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm",
)
