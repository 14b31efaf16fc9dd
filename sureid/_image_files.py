"""Image files: the extensions sureid reads and the one decoder every image path shares.

The dataset readers, ``read_custom``, ``ImageDataset``, ``FeatureExtractor``, the ranked-list
pictures and ``OccluderBank`` all list files with :func:`list_images` / :func:`image_paths`
and decode them with :func:`open_image` / :func:`to_mode`, so a 16-bit greyscale PNG or a
broken symlink is handled the same way everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "IMAGE_EXTENSIONS", "broken_links", "image_paths", "list_images", "open_image", "to_mode",
]

# lower case; every one is a format Pillow decodes without plugins
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm",
)

# Pillow opens 16-bit greyscale PNG/TIFF in these modes (older releases PNGs in "I");
# convert("RGB") clips them at 255, i.e. turns them white. 16-bit colour PNGs open as 8-bit
# RGB(A) already.
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def _sixteen_bit(img: Image.Image, mode: str) -> Image.Image:
    """16-bit grey -> 8-bit ``mode`` ("RGB" or "RGBA") keeping the high byte, as Pillow does
    for 16-bit colour; a tRNS grey key becomes transparent in RGBA."""
    arr = np.asarray(img).astype(np.uint32)
    grey = (arr >> 8).astype(np.uint8)
    planes = [grey, grey, grey]
    if mode == "RGBA":
        alpha = np.full_like(grey, 255)
        key = img.info.get("transparency")
        if isinstance(key, int):  # tRNS: one grey value marks transparent pixels
            alpha[arr == key] = 0
        planes.append(alpha)
    return Image.fromarray(np.ascontiguousarray(np.dstack(planes)))


def to_mode(img: Image.Image, mode: str = "RGB", *, what: str = "image") -> Image.Image:
    """``img`` as 8-bit ``mode`` ("RGB" or "RGBA") without clipping wide-range images.

    16-bit greyscale (``"I;16"``, and ``"I"`` read from a PNG) is scaled to 8 bits; 32-bit
    ``"I"``/``"F"`` images have no fixed white level and are refused. Other modes go through
    Pillow's ``convert``. ``img`` itself is not modified.

    Raises:
        ValueError: an empty image, a 32-bit mode, or a mode Pillow cannot convert; the message
            names ``what``.
    """
    if mode not in ("RGB", "RGBA"):
        raise ValueError(f"mode must be 'RGB' or 'RGBA', got {mode!r}")
    if img.width < 1 or img.height < 1:
        raise ValueError(f"{what} is empty (size {img.size})")
    if img.mode == mode:
        return img
    if img.mode in _SIXTEEN_BIT_MODES or (img.mode == "I" and img.format == "PNG"):
        return _sixteen_bit(img, mode)
    if img.mode in ("I", "F"):
        lo, hi = img.getextrema()
        raise ValueError(
            f"{what}: PIL mode {img.mode!r} (values {lo}..{hi}) has no fixed range to scale "
            f"to 8 bits; convert it to {mode!r} or 'L' first"
        )
    try:
        return img.convert(mode)
    except (ValueError, OSError) as err:
        raise ValueError(f"{what}: cannot convert PIL mode {img.mode!r} to {mode} ({err})") from err


def open_image(path: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    """Read the image file ``path`` fully and return it as 8-bit ``mode`` (see :func:`to_mode`).

    Raises:
        FileNotFoundError: ``path`` does not exist (a broken symlink included).
        OSError: Pillow cannot read it (truncated, not an image); names the file.
        ValueError: a mode that cannot be brought to 8 bits; names the file.
    """
    where = repr(str(path))
    try:
        with Image.open(path) as im:
            im.load()
            return to_mode(im, mode, what=f"image {where}")
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {where}") from None
    except (SyntaxError, Image.DecompressionBombError) as err:
        raise OSError(f"cannot read image {where}: {err}") from err
    except OSError as err:
        if where in str(err):
            raise
        raise OSError(f"cannot read image {where}: {err}") from err


def broken_links(paths: Iterable[Path]) -> list[Path]:
    """The symlinks among ``paths`` that lead nowhere (dangling, or a loop)."""
    return [p for p in paths if p.is_symlink() and not p.exists()]


def image_paths(
    folder: str | os.PathLike, *, recursive: bool = True, broken: str = "raise"
) -> list[Path]:
    """Image files in ``folder`` (any of ``IMAGE_EXTENSIONS``), sorted; maybe empty.

    A symlink with an image extension that leads nowhere (dangling or looping) is not
    skipped silently: ``broken="raise"`` raises ``FileNotFoundError`` naming it,
    ``broken="keep"`` returns it among the files (for callers that report unreadable files
    themselves).
    """
    root = Path(folder)
    it = root.rglob("*") if recursive else root.iterdir()
    candidates = [p for p in it if p.suffix.lower() in IMAGE_EXTENSIONS]
    bad = broken_links(candidates)
    if bad and broken == "raise":
        shown = ", ".join(repr(str(p)) for p in bad[:3]) + (" ..." if len(bad) > 3 else "")
        raise FileNotFoundError(
            f"{len(bad)} image link(s) in {str(root)!r} lead nowhere (dangling or a loop): "
            f"{shown}; fix or remove them"
        )
    return sorted(p for p in candidates if p.is_file() or (broken == "keep" and p in bad))


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursively, any of ``IMAGE_EXTENSIONS``), sorted.

    Raises:
        FileNotFoundError: ``folder`` does not exist, or an image symlink in it leads nowhere.
        ValueError: it holds no image.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {str(root)!r}")
    files = image_paths(root)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {str(root)!r}")
    return files
