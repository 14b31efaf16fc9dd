"""Absolute position embeddings of one ViT carried to another: patch-grid resampling and
prefix rows (class, distillation, register tokens) matched by name."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .weights_file import PretrainedWeightsError

__all__ = ["fit_pos_embed", "resample_pos_embed"]


def resample_pos_embed(
    pos_embed: torch.Tensor,
    new_grid: tuple[int, int],
    *,
    num_prefix_tokens: int,
    old_grid: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Resample an absolute position embedding to another patch grid; prefix rows kept.

    Bicubic interpolation with anti-aliasing on the patch grid (as timm's
    ``resample_abs_pos_embed``), computed in float32 and returned in the input dtype.

    Args:
        pos_embed: ``(1, P + h*w, C)``.
        new_grid: ``(H', W')`` patch grid of the model, e.g. ``(16, 8)`` at 256x128.
        num_prefix_tokens: ``P`` rows at the front that are not grid positions (0 for
            ``no_embed_class`` models).
        old_grid: ``(h, w)``; default: square, ``h = w = sqrt(N)``.

    Returns:
        ``(1, P + H'*W', C)``.

    Example:
        >>> resample_pos_embed(torch.randn(1, 1 + 196, 8), (16, 8), num_prefix_tokens=1).shape
        torch.Size([1, 129, 8])
    """
    if pos_embed.dim() != 3 or pos_embed.shape[0] != 1:
        raise ValueError(f"pos_embed must be (1, P + N, C), got {tuple(pos_embed.shape)}")
    n = pos_embed.shape[1] - num_prefix_tokens
    if old_grid is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(
                f"pos_embed has {n} patch positions, not a square grid; give old_grid=(h, w)"
            )
        old_grid = (side, side)
    old_grid, new_grid = tuple(int(v) for v in old_grid), tuple(int(v) for v in new_grid)
    if old_grid[0] * old_grid[1] != n:
        raise ValueError(f"old_grid {old_grid} does not hold the {n} patch positions of pos_embed")
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    if old_grid == new_grid:
        return pos_embed
    c = grid.shape[-1]
    grid = grid.float().reshape(1, *old_grid, c).permute(0, 3, 1, 2)  # (1, C, h, w)
    grid = F.interpolate(grid, size=new_grid, mode="bicubic", antialias=True, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], c).to(pos_embed.dtype)
    return torch.cat([prefix, grid], dim=1)


def _prefix_names(cls: bool, dist: bool, reg: int) -> list[str]:
    return ["cls"] * cls + ["dist"] * dist + [f"reg{i}" for i in range(reg)]


def fit_pos_embed(
    target: nn.Module,
    pos: torch.Tensor,
    source: Mapping[str, torch.Tensor],
    source_grid: tuple[int, int] | None,
    path: object,
) -> tuple[torch.Tensor, tuple | None, str | None]:
    """A file's ``pos_embed`` ``(1, P_file + n, C)`` made to fit ``target``'s.

    The patch rows are resampled to ``target``'s grid (:func:`resample_pos_embed`; the file's
    grid is ``source_grid`` or inferred as a square) and the prefix rows matched by name
    (``cls``, ``dist``, ``reg0``, ...): a row the file lacks keeps the model's value, a file
    row the model lacks is dropped.

    Args:
        target: the ViT receiving the weights.
        pos: the file's position embedding.
        source: the file's other tensors, keys as the model's (their prefix tokens tell
            which prefix rows ``pos`` holds).
        source_grid: ``(h, w)`` of the file's patch grid, or ``None``.
        path: the file, for messages.

    Returns:
        ``(pos_embed, (file grid, model grid) or None when not resampled, a description of
        the prefix-row mapping or None when the rows match one to one)``; ``pos`` itself
        when its shape does not fit (the caller reports it as a shape mismatch).

    Raises:
        PretrainedWeightsError: the model's or the file's rows are not prefix rows + a grid.
    """
    own = target.pos_embed
    grid = tuple(int(v) for v in target.patch_embed.grid_size)
    model_rows = [] if getattr(target, "no_embed_class", False) else _prefix_names(
        getattr(target, "cls_token", None) is not None,
        getattr(target, "dist_token", None) is not None,
        int(getattr(target, "num_reg_tokens", 0) or 0),
    )
    if own.shape[1] != len(model_rows) + grid[0] * grid[1]:
        raise PretrainedWeightsError(
            f"{path}: cannot map pos_embed onto {type(target).__name__}, whose pos_embed "
            f"{tuple(own.shape)} is not {len(model_rows)} prefix rows + a {grid} grid"
        )
    if pos.dim() != 3 or pos.shape[0] != 1 or pos.shape[2] != own.shape[2]:
        return pos, None, None
    reg = source.get("reg_token")
    file_rows = _prefix_names(
        "cls_token" in source, "dist_token" in source, int(reg.shape[1]) if reg is not None else 0
    )
    file_rows, src_grid = _file_layout(pos, file_rows, model_rows, grid, source_grid, path)
    if file_rows == model_rows and src_grid == grid:
        return pos, None, None
    p = len(file_rows)
    resampled = resample_pos_embed(pos, grid, num_prefix_tokens=p, old_grid=src_grid)
    rows = [
        pos[:, file_rows.index(name)] if name in file_rows else own[:, i].detach().to(pos.device)
        for i, name in enumerate(model_rows)
    ]
    grids = (src_grid, grid) if src_grid != grid else None
    mapping = None
    if file_rows != model_rows:
        kept = [n for n in model_rows if n in file_rows]
        mapping = (
            f"file [{', '.join(file_rows)}] -> model [{', '.join(model_rows)}]"
            + (f" (model rows not in the file keep their values: "
               f"{[n for n in model_rows if n not in kept]})" if len(kept) < len(model_rows)
               else "")
        )
    prefix = torch.stack(rows, dim=1).to(pos.dtype) if rows else pos[:, :0]
    return torch.cat([prefix, resampled[:, p:]], dim=1), grids, mapping


def _file_layout(pos, file_rows, model_rows, grid, source_grid, path):
    """``(prefix row names, (h, w) grid)`` of the file's ``pos_embed``: the given
    ``source_grid``, else the model's grid or a square, with or without the prefix rows."""
    length = pos.shape[1]
    if source_grid is not None:
        src_grid = tuple(int(v) for v in source_grid)
        n = src_grid[0] * src_grid[1]
        if length not in (n, n + len(file_rows)):
            raise PretrainedWeightsError(
                f"{path}: pos_embed has {length} rows, which is not a {src_grid} grid "
                f"(+ {len(file_rows)} prefix rows {file_rows})"
            )
        return ([] if length == n else file_rows), src_grid
    for rows in (file_rows, []):
        n = length - len(rows)
        side = math.isqrt(max(n, 0))
        if n == grid[0] * grid[1] and rows == model_rows:
            return rows, grid
        if side * side == n and n > 0:
            return rows, (side, side)
    raise PretrainedWeightsError(
        f"{path}: cannot infer the patch grid of pos_embed {tuple(pos.shape)} "
        f"({length - len(file_rows)} positions after {len(file_rows)} prefix rows, not "
        "a square); pass source_grid=(h, w)"
    )
