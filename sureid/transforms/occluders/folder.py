"""The occluder folder: PNGs and a manifest, written complete or not at all, and checked."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from ..._atomic import replace_dir, temp_sibling
from ..._image_files import IMAGE_EXTENSIONS

__all__ = ["OCCLUDER_MANIFEST", "manifest_problem", "save_occluders"]

OCCLUDER_MANIFEST = "sureid_occluders.json"
_MANIFEST_FORMAT = "sureid-occluders"


def manifest_problem(folder: Path) -> str | None:
    """Why a :func:`save_occluders` folder is not complete, or None (also for other folders).

    A folder with our manifest must hold every file it lists, at the size written. A folder
    without it whose images are exactly ``occluder_0000.png ...`` (what an older sureid wrote,
    maybe interrupted) cannot be checked, so it is not trusted either.
    """
    try:
        with open(folder / OCCLUDER_MANIFEST, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        names = sorted(p.name for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if names and names == [f"occluder_{i:04d}.png" for i in range(len(names))]:
            return (f"it holds occluder_0000.png ... occluder_{len(names) - 1:04d}.png as "
                    f"written by save_occluders, but no {OCCLUDER_MANIFEST} saying the "
                    "writing finished (an older sureid, or an interrupted run)")
        return None
    except (OSError, ValueError) as err:
        return f"its {OCCLUDER_MANIFEST} cannot be read ({err})"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("format") != _MANIFEST_FORMAT or not isinstance(files, dict):
        return f"its {OCCLUDER_MANIFEST} is not a sureid occluder manifest"
    bad = [name for name, size in files.items()
           if not (folder / name).is_file() or (folder / name).stat().st_size != size]
    if bad:
        shown = ", ".join(repr(b) for b in bad[:3]) + (" ..." if len(bad) > 3 else "")
        return (f"{len(bad)} of the {len(files)} files its {OCCLUDER_MANIFEST} lists are "
                f"missing or changed size: {shown}")
    return None


def _replaceable(folder: Path, prefix: str) -> bool:
    """Empty, or only what save_occluders writes (our manifest and ``{prefix}_NNNN.png``)."""
    ours = re.compile(rf"{re.escape(prefix)}_\d{{4,}}\.png")
    return all(p.is_file() and (p.name == OCCLUDER_MANIFEST or ours.fullmatch(p.name))
               for p in folder.iterdir())


def save_occluders(
    images: Iterable[Image.Image], folder: str | os.PathLike, *, prefix: str = "occluder"
) -> list[Path]:
    """Write occluders as PNGs ``{prefix}_{i:04d}.png`` into ``folder``, complete or not at all.

    The PNGs and a manifest ``sureid_occluders.json`` (names and sizes), written last, go to
    a hidden temporary sibling ``.{name}.tmp-*`` that is renamed to ``folder`` at the end, so
    an interrupted call (Ctrl-C, SIGTERM, SIGKILL) leaves no ``folder`` and no truncated PNG
    in it; the next call removes the temporary sibling of a dead run. :class:`OccluderBank`
    checks the manifest when it loads the folder.

    Args:
        images: PIL images.
        folder: a new folder, an empty one, or one that holds only an earlier
            ``save_occluders`` output (replaced as a whole).
        prefix: file name prefix.

    Returns:
        The written paths, so ``NODA(folder)`` exercises the folder-loading path.

    Raises:
        TypeError: an item is not a PIL image (nothing is written), ``folder`` is not a path,
            ``prefix`` is not a str.
        ValueError: ``images`` is empty (an empty list or an exhausted generator: an earlier
            output is never replaced by nothing), or an image is empty.
        FileExistsError: ``folder`` holds other files, or is a file; it is never touched.
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a str or os.PathLike, got {type(folder).__name__}")
    folder = Path(folder)
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__} {prefix!r}")
    if not prefix or any(c in prefix for c in "/\\"):
        raise ValueError(f"prefix must be a non-empty file name part, got {prefix!r}")
    if isinstance(images, Image.Image) or not isinstance(images, Iterable):
        raise TypeError(
            f"images must be an iterable of PIL images, got {type(images).__name__}"
        )
    images = list(images)  # validated as a whole before anything is written
    for i, im in enumerate(images):
        if not isinstance(im, Image.Image):
            raise TypeError(f"images[{i}]: expected a PIL image, got {type(im).__name__}")
        if im.width < 1 or im.height < 1:
            raise ValueError(f"images[{i}] is empty (size {im.size})")
    if not images:
        raise ValueError(
            f"save_occluders: images is empty (an empty sequence or an exhausted generator); "
            f"nothing to write, {str(folder)!r} is left as it is"
        )
    if folder.exists() and (not folder.is_dir() or not _replaceable(folder, prefix)):
        raise FileExistsError(
            f"save_occluders: {str(folder)!r} exists and holds other files than an earlier "
            f"save_occluders output ({prefix}_NNNN.png, {OCCLUDER_MANIFEST}); refusing to "
            "touch it, pick a new or empty folder"
        )
    tmp = temp_sibling(folder)
    try:
        sizes = {}
        for i, im in enumerate(images):
            name = f"{prefix}_{i:04d}.png"
            im.save(tmp / name, format="PNG")
            sizes[name] = (tmp / name).stat().st_size
        manifest = {"format": _MANIFEST_FORMAT, "files": sizes}
        with open(tmp / OCCLUDER_MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
        replace_dir(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return [folder / name for name in sizes]
