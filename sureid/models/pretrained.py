"""Load local pretrained ViT weights (timm, DeiT, TransReID files) into timm or sureid ViTs.

Offline: nothing is downloaded. The position embedding is resampled to the model's patch
grid (bicubic, as timm does), so ImageNet weights at 224x224 (14x14 patches) load into a
ReID model at 256x128 (16x8). See ``docs/pretrained.md``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._optional import require

__all__ = ["PretrainedReport", "PretrainedWeightsError", "load_pretrained", "resample_pos_embed"]

# wrappers around the weights in training checkpoints, tried in this order
_CONTAINERS = ("state_dict", "model", "module", "net", "state_dict_ema", "model_ema")
# classifier heads of the pretraining task: never loaded, never "unexpected"
_HEAD_PREFIXES = ("head.", "head_dist.", "pre_logits.", "fc.")


class PretrainedWeightsError(ValueError):
    """A weights file that cannot be read, or whose weights do not fit the model."""


@dataclass
class PretrainedReport:
    """What :func:`load_pretrained` did.

    Attributes:
        path: the file read.
        prefix: the key prefix stripped from the file's keys (``""``, ``"module."``,
            ``"base."``, ``"backbone.backbone."``, ...).
        loaded_keys: model keys that received a value from the file.
        missing_keys: model keys the file has no value for (they keep their current values).
        unexpected_keys: file keys under ``prefix`` that the model does not have (e.g.
            ``dist_token`` of a distilled DeiT loaded into a one-prefix-token model).
        ignored_keys: the file's classification heads (``head.*``, ``head_dist.*``,
            ``pre_logits.*``, ``fc.*``) and keys outside ``prefix`` (e.g. TransReID's
            ``classifier.*`` and ``bottleneck.*``).
        pos_embed: ``(file grid, model grid)`` when the position embedding was resampled,
            else ``None``.
        prefix_tokens: how the position embedding's prefix rows were mapped, e.g.
            ``"file [cls, dist] -> model [cls]"``; ``None`` if they matched one to one.
    """

    path: Path
    prefix: str
    loaded_keys: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    ignored_keys: list[str] = field(default_factory=list)
    pos_embed: tuple[tuple[int, int], tuple[int, int]] | None = None
    prefix_tokens: str | None = None

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded_keys)} tensors from {self.path}"
                 + (f" (key prefix {self.prefix!r} stripped)" if self.prefix else "")]
        if self.pos_embed is not None:
            (a, b), (c, d) = self.pos_embed
            lines.append(f"  pos_embed resampled from a {a}x{b} to a {c}x{d} patch grid")
        if self.prefix_tokens is not None:
            lines.append(f"  pos_embed prefix rows: {self.prefix_tokens}")
        for name, keys in (("missing", self.missing_keys), ("unexpected", self.unexpected_keys),
                           ("ignored", self.ignored_keys)):
            if keys:
                more = f", ... ({len(keys)} in all)" if len(keys) > 8 else ""
                shown = ", ".join(keys[:8]) + more
                lines.append(f"  {name}: {shown}")
        return "\n".join(lines)


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


def load_pretrained(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    strict: bool = False,
    source_grid: tuple[int, int] | None = None,
) -> PretrainedReport:
    """Load a local weights file into a timm ViT, a sureid ViT or an ``HTSViT``'s backbone.

    Reads ``.pth``/``.pt``/``.bin`` files with ``torch.load(weights_only=True)`` and
    ``.safetensors`` with safetensors. Accepts timm training checkpoints
    (``{"state_dict": ...}``), DeiT releases (``{"model": ...}``), bare state dicts, and
    keys behind a wrapper prefix (``module.`` from DDP, TransReID's ``base.``, a sureid
    ``ReIDModel``'s ``backbone.backbone.``): the prefix under which most keys match the
    model is stripped. Classification heads (``head.*``, ``head_dist.*``) are ignored. The
    position embedding is resampled to the model's patch grid (:func:`resample_pos_embed`)
    and its prefix rows are matched by name (``cls``, ``dist``, ``reg``): a distilled
    DeiT's ``dist`` row is dropped for a one-prefix-token model.

    Args:
        model: a timm ``VisionTransformer`` (also ``VisionTransformerDistilled``), a
            :class:`sureid.VisionTransformer`, or anything with such a ``.backbone``
            (:class:`~sureid.HTSViT`, :class:`~sureid.engine.ReIDModel`); modified in place.
        path: the weights file.
        strict: raise if a model key stays missing or a file key is unexpected (heads
            excepted).
        source_grid: ``(h, w)`` patch grid of the file's position embedding when it is not
            square (e.g. ``(16, 8)`` for a ReID checkpoint at 256x128, ``(21, 10)`` for a
            TransReID stride-12 one); default: square.

    Returns:
        :class:`PretrainedReport` (``print(report)`` for a summary).

    Raises:
        FileNotFoundError: no file at ``path``.
        PretrainedWeightsError: the file cannot be read with ``weights_only=True``, holds no
            state dict, no key matches the model, a tensor's shape does not fit (other than
            the position embedding), the grid cannot be inferred, or ``strict`` fails. The
            message names the path.
        TypeError: ``model`` is not a ViT with ``pos_embed`` and ``patch_embed``.

    Example:
        >>> vit = sureid.deit_small(img_size=(256, 128))  # doctest: +SKIP
        >>> print(load_pretrained(vit, "deit_small_patch16_224-cd65a155.pth"))  # doctest: +SKIP
    """
    target = _vit_of(model)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {path}")
    source = _state_dict_of(_read(path), path)
    own = target.state_dict()
    prefix = _best_prefix(source, own, path)

    report = PretrainedReport(path=path, prefix=prefix)
    chosen: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        if not key.startswith(prefix):
            report.ignored_keys.append(key)
            continue
        name = key[len(prefix):]
        if name.startswith(_HEAD_PREFIXES):
            report.ignored_keys.append(key)
        elif name in own:
            chosen[name] = value
        else:
            report.unexpected_keys.append(name)

    if "pos_embed" in chosen:
        renamed = {k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix)}
        chosen["pos_embed"] = _fit_pos_embed(
            target, chosen["pos_embed"], renamed, source_grid, report, path
        )
    mismatched = [
        f"{k}: file {tuple(v.shape)}, model {tuple(own[k].shape)}"
        for k, v in chosen.items() if v.shape != own[k].shape
    ]
    if mismatched:
        raise PretrainedWeightsError(
            f"{path}: {len(mismatched)} tensors do not fit the model ({'; '.join(mismatched[:5])}"
            f"{'; ...' if len(mismatched) > 5 else ''}); is it the same architecture "
            "(embed_dim, depth, patch size)?"
        )
    report.loaded_keys = sorted(chosen)
    report.missing_keys = [k for k in own if k not in chosen]
    if strict:
        missing = [k for k in report.missing_keys if not k.startswith(_HEAD_PREFIXES)]
        if missing or report.unexpected_keys:
            raise PretrainedWeightsError(
                f"{path} does not match the model exactly (strict=True): missing {missing}, "
                f"unexpected {report.unexpected_keys}"
            )
    with torch.no_grad():
        target.load_state_dict(chosen, strict=False)
    return report


# ---------------------------------------------------------------- helpers


def _vit_of(model: nn.Module) -> nn.Module:
    target = model
    while not hasattr(target, "pos_embed") and isinstance(getattr(target, "backbone", None),
                                                          nn.Module):
        target = target.backbone
    if not isinstance(target, nn.Module) or not all(
        hasattr(target, a) for a in ("pos_embed", "patch_embed")
    ):
        raise TypeError(
            "model must be a ViT with pos_embed and patch_embed (timm VisionTransformer, "
            "sureid.VisionTransformer) or wrap one as .backbone (HTSViT, ReIDModel), got "
            f"{type(model).__name__}"
        )
    return target


def _read(path: Path) -> object:
    if path.suffix == ".safetensors":
        st = require("safetensors.torch", purpose="load_pretrained on .safetensors files")
        try:
            return st.load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types
            raise PretrainedWeightsError(
                f"cannot read pretrained weights from {path}: {type(exc).__name__}: {exc}"
            ) from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError (zip), EOFError, ...
        raise PretrainedWeightsError(
            f"cannot read pretrained weights from {path} with torch.load(weights_only=True): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. Expected a "
            "timm/DeiT/TransReID checkpoint (.pth, .pt, .bin) or a .safetensors file; JAX .npz "
            "files load through timm.create_model(pretrained_cfg_overlay=dict(file=...))"
        ) from exc


def _state_dict_of(obj: object, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # e.g. {"model": {"state_dict": ...}}
        if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _CONTAINERS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping):
        raise PretrainedWeightsError(
            f"{path} holds a {type(obj).__name__}, not a state dict of tensors"
        )
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise PretrainedWeightsError(
            f"{path} holds no tensors (top-level keys: {list(obj)[:10]}); expected a state dict "
            f"or one under one of {list(_CONTAINERS)}"
        )
    return tensors


def _best_prefix(source: Mapping[str, torch.Tensor], own: Mapping, path: Path) -> str:
    """The key prefix under which most of the file's keys are model keys."""
    counts: dict[str, int] = {}
    for key in source:
        parts = key.split(".")
        for i in range(len(parts)):
            if ".".join(parts[i:]) in own:
                p = ".".join(parts[:i]) + ("." if i else "")
                counts[p] = counts.get(p, 0) + 1
    if not counts:
        raise PretrainedWeightsError(
            f"no key of {path} matches the model: file keys such as {list(source)[:5]}, model "
            f"keys such as {list(own)[:5]}"
        )
    return max(counts, key=lambda p: (counts[p], -len(p)))


def _prefix_names(cls: bool, dist: bool, reg: int) -> list[str]:
    return ["cls"] * cls + ["dist"] * dist + [f"reg{i}" for i in range(reg)]


def _fit_pos_embed(target, pos, source, source_grid, report, path) -> torch.Tensor:
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
        return pos  # reported as a shape mismatch by the caller
    reg = source.get("reg_token")
    file_rows = _prefix_names(
        "cls_token" in source, "dist_token" in source, int(reg.shape[1]) if reg is not None else 0
    )
    length = pos.shape[1]
    if source_grid is not None:
        src_grid = tuple(int(v) for v in source_grid)
        n = src_grid[0] * src_grid[1]
        if length not in (n, n + len(file_rows)):
            raise PretrainedWeightsError(
                f"{path}: pos_embed has {length} rows, which is not a {src_grid} grid "
                f"(+ {len(file_rows)} prefix rows {file_rows})"
            )
        if length == n:
            file_rows = []
    else:
        src_grid = None
        for rows in (file_rows, []):
            n = length - len(rows)
            side = math.isqrt(max(n, 0))
            if n == grid[0] * grid[1] and rows == model_rows:
                src_grid = grid
            elif side * side == n and n > 0:
                src_grid = (side, side)
            if src_grid is not None:
                file_rows = rows
                break
        if src_grid is None:
            raise PretrainedWeightsError(
                f"{path}: cannot infer the patch grid of pos_embed {tuple(pos.shape)} "
                f"({length - len(file_rows)} positions after {len(file_rows)} prefix rows, not "
                "a square); pass source_grid=(h, w)"
            )
    if file_rows == model_rows and src_grid == grid:
        return pos
    p = len(file_rows)
    resampled = resample_pos_embed(pos, grid, num_prefix_tokens=p, old_grid=src_grid)
    rows = [
        pos[:, file_rows.index(name)] if name in file_rows else own[:, i].detach().to(pos.device)
        for i, name in enumerate(model_rows)
    ]
    if src_grid != grid:
        report.pos_embed = (src_grid, grid)
    if file_rows != model_rows:
        kept = [n for n in model_rows if n in file_rows]
        report.prefix_tokens = (
            f"file [{', '.join(file_rows)}] -> model [{', '.join(model_rows)}]"
            + (f" (model rows not in the file keep their values: "
               f"{[n for n in model_rows if n not in kept]})" if len(kept) < len(model_rows)
               else "")
        )
    prefix = torch.stack(rows, dim=1).to(pos.dtype) if rows else pos[:, :0]
    return torch.cat([prefix, resampled[:, p:]], dim=1)
