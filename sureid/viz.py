"""Pictures people would rather see than read: kept tokens (Fig. 6 style)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image


def mask_dropped_patches(
    image: torch.Tensor, kept: torch.Tensor, patch_size: tuple[int, int], *, fade: float = 0.85
) -> torch.Tensor:
    """Fade the patches that were dropped, leaving kept ones untouched.

    Args:
        image: ``(3, H, W)`` uint8.
        kept: ``(k,)`` kept patch indices into the row-major ``(H/ph, W/pw)`` grid.
        patch_size: ``(ph, pw)``.
        fade: how far dropped patches are blended towards white, in [0, 1].

    Returns:
        ``(3, H, W)`` uint8, a new tensor.
    """
    if image.dtype != torch.uint8 or image.dim() != 3:
        raise ValueError(f"image must be a (3, H, W) uint8 tensor, got {image.dtype} "
                         f"{tuple(image.shape)}")
    ph, pw = patch_size
    gh, gw = image.shape[1] // ph, image.shape[2] // pw
    keep = torch.zeros(gh * gw, dtype=torch.bool)
    keep[kept.long().cpu()] = True
    pixel_keep = keep.view(gh, gw).repeat_interleave(ph, 0).repeat_interleave(pw, 1)
    out = image.clone()
    region = out[:, : gh * ph, : gw * pw]
    faded = (region.float() * (1 - fade) + 255 * fade).to(torch.uint8)
    region.copy_(torch.where(pixel_keep, region, faded))
    return out


def render_kept_tokens(
    images: torch.Tensor,
    kept_per_stage: Sequence[torch.Tensor],
    patch_size: tuple[int, int],
    path: str | os.PathLike | None = None,
    *,
    scale: int = 2,
) -> Image.Image:
    """A Fig. 6-style sheet: one row per image, original then the kept tokens after each stage.

    Args:
        images: ``(B, 3, H, W)`` uint8 images (un-normalised).
        kept_per_stage: per stage ``(B, k_s)`` kept indices into the original patch grid, as
            returned by ``HTSViT.forward_features(x, return_indices=True)``.
        patch_size: ``(ph, pw)`` of the model.
        path: where to write the PNG, or ``None``.
        scale: integer upscaling for legibility.

    Returns:
        The sheet as a PIL image.
    """
    if images.dim() != 4 or images.dtype != torch.uint8:
        raise ValueError(f"images must be (B, 3, H, W) uint8, got {images.dtype} "
                         f"{tuple(images.shape)}")
    b, _, h, w = images.shape
    for s, kept in enumerate(kept_per_stage):
        if kept.dim() != 2 or kept.shape[0] != b:
            raise ValueError(f"kept_per_stage[{s}] must be (B={b}, k), got {tuple(kept.shape)}")
    cols = 1 + len(kept_per_stage)
    gap = 4
    sheet = np.full((b * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for i in range(b):
        panels = [images[i]]
        panels += [mask_dropped_patches(images[i], k[i], patch_size) for k in kept_per_stage]
        for j, panel in enumerate(panels):
            y, x = i * (h + gap), j * (w + gap)
            sheet[y : y + h, x : x + w] = panel.permute(1, 2, 0).numpy()
    img = Image.fromarray(sheet)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    if path is not None:
        img.save(path)
    return img
