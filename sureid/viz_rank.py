"""Ranked-list pictures: a query and its top-k gallery images, true matches framed green.

Under each gallery image: ``#rank`` and the distance to 3 significant digits, then its
label line (``pid 10 c2``, as the caller writes it: the CLI numbers cameras as the file
names do).

For HTS models a second row shows each image's kept tokens after the last pruning stage
(dropped patches faded, :func:`sureid.viz.mask_dropped_patches`), so one can see what the
model looked at for the query and for each retrieved image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ._checks import check_int, check_output_path, check_size, is_real
from ._image_files import open_image, to_mode
from .viz import mask_dropped_patches

__all__ = ["render_ranked_list"]

QUERY_COLOUR = (40, 90, 220)
TRUE_COLOUR = (20, 170, 40)
FALSE_COLOUR = (220, 30, 30)
UNKNOWN_COLOUR = (150, 150, 150)


def _as_uint8(image, size: tuple[int, int]) -> torch.Tensor:
    """PIL image, path or ``(3, H, W)`` uint8 tensor -> ``(3, *size)`` uint8."""
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image)  # the shared decoder: 16-bit grey is not clipped to white
    if isinstance(image, Image.Image):
        image = torch.from_numpy(np.asarray(to_mode(image, "RGB")).copy()).permute(2, 0, 1)
    if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 or image.ndim != 3:
        raise TypeError(f"images must be paths, PIL images or (3, H, W) uint8 tensors, got "
                        f"{type(image).__name__}")
    if tuple(image.shape[-2:]) != size:
        image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True,
                              align_corners=False)[0]
    return image


def _framed(img: torch.Tensor, colour, border: int) -> np.ndarray:
    h, w = img.shape[-2:]
    out = np.empty((h + 2 * border, w + 2 * border, 3), dtype=np.uint8)
    out[:] = colour
    out[border : border + h, border : border + w] = img.permute(1, 2, 0).numpy()
    return out


def render_ranked_list(
    query,
    gallery: Sequence,
    *,
    matches: Sequence[bool | None] | None = None,
    distances: Sequence[float] | None = None,
    labels: Sequence[str | None] | None = None,
    query_label: str | None = None,
    kept: Sequence[torch.Tensor] | None = None,
    patch_size: tuple[int, int] | None = None,
    size: tuple[int, int] = (128, 64),
    scale: int = 2,
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Image.Image:
    """One query and its ranked gallery images in a row, framed by correctness.

    Args:
        query: the query image (path, PIL image or ``(3, H, W)`` uint8 tensor).
        gallery: the top-k gallery images, best first (same kinds).
        matches: per gallery image ``True`` (green frame), ``False`` (red) or ``None`` (grey,
            labels unknown); default all ``None``.
        distances: printed under each gallery image after its rank (``#1 0.0123``, 3
            significant digits).
        labels: a second text line under each gallery image, e.g. ``"pid 10 c2"`` (``None``
            entries: none).
        query_label: the same line under the query.
        kept: kept-token overlay row: ``1 + k`` index tensors ``(k_s,)`` (query first) into
            the model's row-major patch grid at ``size``; ``None`` for no overlay row.
        patch_size: ``(ph, pw)`` of the model, required with ``kept``.
        size: ``(H, W)`` every image is shown at (the model's input size for ``kept``).
        scale: integer upscaling of the whole picture (an int >= 1).
        title: a line of text above the images.
        path: write the PNG there (parent folders created); never one of the input images.

    Returns:
        The picture as a PIL image.

    Raises:
        TypeError, ValueError: bad arguments (``scale=0``, ``scale=True``, ``size=(0, 64)``,
            ``path`` equal to an input image or a folder), named before anything is drawn.
    """
    scale = check_int("scale", scale, low=1)
    size = check_size("size", size)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {type(title).__name__}")
    if path is not None:
        inputs = [im for im in [query, *gallery] if isinstance(im, (str, os.PathLike))]
        path = check_output_path("path", path, inputs=inputs)
    k = len(gallery)
    matches = list(matches) if matches is not None else [None] * k
    if len(matches) != k:
        raise ValueError(f"matches has {len(matches)} entries for {k} gallery images")
    if distances is not None and len(distances) != k:
        raise ValueError(f"distances has {len(distances)} entries for {k} gallery images")
    if distances is not None and not all(is_real(d) for d in distances):
        raise TypeError(f"distances must be real numbers, got {list(distances)!r}")
    labels = list(labels) if labels is not None else [None] * k
    if len(labels) != k:
        raise ValueError(f"labels has {len(labels)} entries for {k} gallery images")
    for name, text in (("labels", labels), ("query_label", [query_label])):
        if not all(t is None or isinstance(t, str) for t in text):
            raise TypeError(f"{name} must be str or None, got {text!r}")
    if kept is not None:
        if patch_size is None:
            raise ValueError("patch_size is required with kept")
        if len(kept) != k + 1:
            raise ValueError(f"kept needs 1 + {k} index tensors (query first), got {len(kept)}")
    images = [_as_uint8(im, size) for im in [query, *gallery]]
    border, gap, line_h = 3, 6, 11
    text_h = line_h * 2 + 2  # "#rank distance", then the label line
    cell_w = size[1] + 2 * border
    rows = [images]
    if kept is not None:
        rows.append([mask_dropped_patches(im, idx, patch_size) for im, idx in zip(
            images, kept, strict=True)])
    top = text_h + 2 if title else 0
    row_h = size[0] + 2 * border + text_h
    width = cell_w * (k + 1) + gap * k + gap * 2
    height = top + row_h * len(rows) + gap * (len(rows) - 1)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    colours = [QUERY_COLOUR] + [
        UNKNOWN_COLOUR if m is None else TRUE_COLOUR if m else FALSE_COLOUR for m in matches
    ]
    for r, row in enumerate(rows):
        y = top + r * (row_h + gap)
        for j, img in enumerate(row):
            x = j * (cell_w + gap) + (gap * 2 if j else 0)  # extra gap after the query
            canvas[y : y + size[0] + 2 * border, x : x + cell_w] = _framed(img, colours[j], border)
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    if title:
        draw.text((2, 1), title, fill=(0, 0, 0))
    label_y = top + size[0] + 2 * border
    for j in range(k + 1):
        x = j * (cell_w + gap) + (gap * 2 if j else 0)
        # "#" keeps the rank apart from the distance ("#1 0.01", not "10.01")
        label = "query" if j == 0 else f"#{j}"
        if j and distances is not None:
            label += f" {float(distances[j - 1]):.3g}"
        draw.text((x + 1, label_y), label, fill=(0, 0, 0))
        second = query_label if j == 0 else labels[j - 1]
        if second:
            draw.text((x + 1, label_y + line_h), second, fill=(0, 0, 0))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        picture.save(path)
    return picture
