"""Load local pretrained ViT weights (timm, DeiT, TransReID files) into timm or sureid ViTs.

Offline: nothing is downloaded. The position embedding is resampled to the model's patch
grid (bicubic, as timm does), so ImageNet weights at 224x224 (14x14 patches) load into a
ReID model at 256x128 (16x8). sureid's own backbone files (``examples/pretrained/*.pt``,
format ``sureid-backbone-v1``) record their architecture, so :func:`pretrained` builds the
ViT they were made for and loads them. See ``docs/pretrained.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import check_bool, check_size
from .pos_embed import fit_pos_embed
from .timm_backbone import create_timm_model
from .vit import VisionTransformer
from .weights_file import (
    BACKBONE_FORMAT,
    PretrainedWeightsError,
    backbone_info,
    read_weights,
    state_dict_of,
)

__all__ = [
    "PretrainedReport",
    "backbone_file_info",
    "backbone_reference",
    "load_pretrained",
    "pretrained",
    "probe_images",
    "shipped_weights_dir",
]

# classifier heads of the pretraining task: never loaded, never "unexpected"
_HEAD_PREFIXES = ("head.", "head_dist.", "pre_logits.", "fc.")


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
        file_info: for a sureid backbone file (``sureid-backbone-v1``), what it records
            besides the weights: ``format``, ``arch``, ``img_size``, ``provenance``
            (:func:`backbone_file_info`); else ``None``.
    """

    path: Path
    prefix: str
    loaded_keys: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    ignored_keys: list[str] = field(default_factory=list)
    pos_embed: tuple[tuple[int, int], tuple[int, int]] | None = None
    prefix_tokens: str | None = None
    file_info: dict[str, Any] | None = None

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded_keys)} tensors from {self.path}"
                 + (f" (key prefix {self.prefix!r} stripped)" if self.prefix else "")]
        if self.file_info is not None:
            lines.append(f"  {BACKBONE_FORMAT} file: arch {self.file_info['arch']}, input "
                         f"{self.file_info['img_size']}")
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
    position embedding is resampled to the model's patch grid
    (:func:`~sureid.models.resample_pos_embed`) and its prefix rows are matched by name
    (``cls``, ``dist``, ``reg``): a distilled DeiT's ``dist`` row is dropped for a
    one-prefix-token model. sureid's backbone files
    (``examples/pretrained/quick_student.pt``: fp16 weights under ``"state_dict"`` beside
    their architecture and a reference output) load too, into fp32; :func:`pretrained`
    also builds the model they were made for.

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
    return _load_into(target, read_weights(path), path, strict=strict,
                      source_grid=source_grid)


def _load_into(target: nn.Module, obj: object, path: Path, *, strict: bool,
               source_grid: tuple[int, int] | None) -> PretrainedReport:
    """:func:`load_pretrained` on the file's content ``obj`` (read once by the caller)."""
    source = state_dict_of(obj, path)
    own = target.state_dict()
    prefix = _best_prefix(source, own, path)

    report = PretrainedReport(path=path, prefix=prefix, file_info=backbone_info(obj, path))
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
        chosen["pos_embed"], report.pos_embed, report.prefix_tokens = fit_pos_embed(
            target, chosen["pos_embed"], renamed, source_grid, path
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


# ---------------------------------------------------------------- sureid backbone files


def probe_images(img_size: tuple[int, int], n: int = 4) -> torch.Tensor:
    """``(n, 3, H, W)`` fixed inputs (seeded, caller's RNG untouched) to fingerprint a backbone."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, *img_size, generator=g)


@torch.no_grad()
def backbone_reference(vit: nn.Module, img_size: tuple[int, int]) -> torch.Tensor:
    """``vit``'s eval-mode float32 output on :func:`probe_images`, ``(4, C)``; mode restored.

    A backbone file stores it, so a loader can check that the model it built gives the
    features the weights gave when they were saved.
    """
    was = vit.training
    vit.eval()
    try:
        return vit(probe_images(img_size)).float()
    finally:
        vit.train(was)


def backbone_file_info(path: str | os.PathLike) -> dict[str, Any] | None:
    """What a sureid backbone file (``sureid-backbone-v1``) records besides its weights.

    Returns:
        ``{"format", "arch", "img_size", "provenance", "num_params"}`` for a backbone file;
        ``None`` for any other readable torch file (a model file, a checkpoint).

    Raises:
        FileNotFoundError: no file at ``path``.
        PretrainedWeightsError: the file cannot be read with ``weights_only=True``, or says
            it is a backbone file but lacks a part.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    obj = read_weights(path)
    info = backbone_info(obj, path)
    if info is not None:  # parameters, not the BatchNorm statistics of a conv stem
        info["num_params"] = sum(v.numel() for k, v in obj["state_dict"].items()
                                 if isinstance(v, torch.Tensor) and v.is_floating_point()
                                 and ".running_" not in f".{k}")
    return info


def shipped_weights_dir() -> Path:
    """Where the shipped backbone files are looked for: ``$SUREID_WEIGHTS_DIR`` when set,
    else ``examples/pretrained`` of the source tree sureid runs from (a clone or an
    editable install; a wheel does not carry them)."""
    env = os.environ.get("SUREID_WEIGHTS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "examples" / "pretrained"


def _resolve(name: str | os.PathLike, root: str | os.PathLike | None) -> Path:
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name must be a shipped name such as 'quick_student' or a path, got "
                        f"{type(name).__name__} {name!r}")
    path = Path(name)
    if path.is_file():
        return path
    folder = Path(root) if root is not None else shipped_weights_dir()
    text = os.fspath(name)
    if path.suffix == "" and "/" not in text and os.sep not in text:
        candidate = folder / f"{text}.pt"
        if candidate.is_file():
            return candidate
    names = sorted(p.stem for p in folder.glob("*.pt")) if folder.is_dir() else []
    raise FileNotFoundError(
        f"no backbone weights {text!r}: not a file, and not a name in {str(folder)!r} "
        f"({'names there: ' + ', '.join(names) if names else 'no .pt files there'}). The "
        "shipped files are examples/pretrained/*.pt of the sureid repository; pass root= "
        "or set SUREID_WEIGHTS_DIR to the folder holding them"
    )


def _build(arch: Mapping[str, Any], img_size: tuple[int, int]) -> nn.Module:
    timm_name = arch.get("timm_name")
    if timm_name is not None:
        return create_timm_model(str(timm_name), img_size=img_size, num_classes=0)
    kwargs = {k: v for k, v in arch.items() if k != "timm_name"}
    return VisionTransformer(img_size=img_size, **kwargs)


def pretrained(
    name: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    img_size: tuple[int, int] | None = None,
    check: bool = True,
    atol: float = 1e-3,
) -> nn.Module:
    """The ViT a sureid backbone file was made for, with its weights (fp32, train mode).

    The file records its architecture (``arch``: ``embed_dim``, ``depth``, ``num_heads``,
    ``patch_size``, ``stem``, or a ``timm_name``) and input size, so nothing has to be
    known in advance. Wrap the result for training:
    ``sureid.HTSViT(sureid.pretrained("quick_student"), keep_ratio=0.7)``.

    Args:
        name: a shipped name (``"quick_student"``, ``"quick_teacher"``: the file
            ``{name}.pt`` in ``root``) or the path of a backbone file.
        root: folder of named files; default :func:`shipped_weights_dir`
            (``$SUREID_WEIGHTS_DIR``, else the repository's ``examples/pretrained``).
        img_size: build for another ``(H, W)``; the position embedding is resampled
            (:func:`load_pretrained`). Default: the size the weights were trained at.
        check: recompute the file's reference output on :func:`probe_images` and compare
            (``atol``); done at the recorded input size only.

    Returns:
        a :class:`sureid.VisionTransformer` (or a timm model for a ``timm_name`` file).

    Raises:
        FileNotFoundError: no such file or name (the message lists the names found).
        PretrainedWeightsError: not a sureid backbone file (for other weights, build the
            model and call :func:`load_pretrained`), or the reference output differs.
        TypeError, ValueError: bad ``name``, ``img_size``, ``check`` or ``atol``.

    Example:
        >>> vit = sureid.pretrained("quick_student")  # doctest: +SKIP
        >>> model = sureid.HTSViT(vit, keep_ratio=0.7)  # doctest: +SKIP
    """
    check_bool("check", check)
    path = _resolve(name, root)
    obj = read_weights(path)
    info = backbone_info(obj, path)
    if info is None:
        raise PretrainedWeightsError(
            f"{path} is not a sureid backbone file ({BACKBONE_FORMAT}): it records no "
            "architecture; build the model and call sureid.load_pretrained(model, path) "
            "(a sureid model file loads with sureid.load)"
        )
    size = info["img_size"] if img_size is None else check_size("img_size", img_size)
    vit = _build(info["arch"], size)
    grid = tuple(s // p for s, p in zip(info["img_size"], vit.patch_embed.patch_size,
                                        strict=True))
    _load_into(vit, obj, path, strict=True, source_grid=grid)
    if check and size == info["img_size"]:
        got, ref = backbone_reference(vit, size), obj["reference"].float()
        if got.shape != ref.shape or not torch.allclose(got, ref, atol=atol, rtol=0):
            err = (got - ref).abs().max().item() if got.shape == ref.shape else "shape"
            raise PretrainedWeightsError(
                f"{path}: the loaded backbone's reference output differs from the saved one "
                f"(max abs diff {err}): the weights do not give the features they gave when "
                "saved"
            )
    return vit
