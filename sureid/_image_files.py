"""The file extensions sureid reads as images: the dataset readers, ``read_custom``,
``FeatureExtractor`` folders and ``OccluderBank`` folders all use this one list."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "list_images"]

# lower case; every one is a format Pillow decodes without plugins
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm",
)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursively, any of ``IMAGE_EXTENSIONS``), sorted.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        ValueError: it holds no image.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {str(root)!r}")
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {str(root)!r}")
    return files
