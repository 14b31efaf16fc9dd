"""Self-describing model files: ``ReIDModel.save(path)`` and ``sureid.load(path)``.

One ``torch.save`` file holds the weights and everything needed to rebuild the network
without the code that trained it: the backbone (sureid's ``VisionTransformer`` constructor
arguments, or a timm model name and the arguments read off the model), the HTS stages
(keep ratios, prune layers, ``prune``), the ReID head (number of classes, reweight head,
eval feature) and the preprocessing (input size, normalisation mean and std). It is written
atomically and read with ``torch.load(weights_only=True)``: only tensors and plain Python
values, nothing is unpickled as code.

Example:
    >>> model.save("runs/final.pt")  # doctest: +SKIP
    >>> model = sureid.load("runs/final.pt")  # eval mode, model.data_config set  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._optional import require
from .engine.checkpoint import load_checkpoint, save_checkpoint
from .engine.model import ReIDModel
from .models.hts_vit import HTSViT
from .models.vit import VisionTransformer
from .version import __version__

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DataConfig",
    "ModelFileError",
    "load",
    "model_config",
    "resolve_data_config",
    "save_model",
]

FORMAT = "sureid.model"
# Bump when the layout of the config changes; load() reads every version up to this one.
FORMAT_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelFileError(ValueError):
    """A file that is not a sureid model, or whose weights do not fit its recorded architecture."""


@dataclass(frozen=True)
class DataConfig:
    """How images are prepared for a model (timm's ``data_config``, reduced to what ReID uses).

    An image is converted to RGB, resized to ``input_size`` ``(H, W)`` with antialiased
    bilinear interpolation (torchvision's ``v2.Resize(antialias=True)``), scaled to [0, 1]
    and normalised with ``mean`` / ``std``.
    """

    input_size: tuple[int, int]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        size = tuple(self.input_size)
        if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
            raise ValueError(f"input_size must be (H, W) positive ints, got {self.input_size!r}")
        for name in ("mean", "std"):
            v = tuple(float(x) for x in getattr(self, name))
            if len(v) != 3:
                raise ValueError(f"{name} must have 3 values (RGB), got {getattr(self, name)!r}")
            object.__setattr__(self, name, v)
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {self.std}")
        object.__setattr__(self, "input_size", size)


def _input_size(backbone: nn.Module) -> tuple[int, int]:
    vit = getattr(backbone, "backbone", backbone)
    size = getattr(getattr(vit, "patch_embed", None), "img_size", None)
    if size is None:
        raise TypeError(f"cannot read the input size of {type(vit).__name__} (no patch_embed)")
    return int(size[0]), int(size[1])


def resolve_data_config(model: nn.Module) -> DataConfig:
    """The model's :class:`DataConfig`: ``model.data_config`` when set (loaded models), else
    the backbone's input size with ImageNet mean and std (what the examples train with)."""
    cfg = getattr(model, "data_config", None)
    if isinstance(cfg, DataConfig):
        return cfg
    backbone = model.backbone if isinstance(model, ReIDModel) else model
    return DataConfig(_input_size(backbone))


# ----------------------------------------------------------------------------- describe
def _timm_config(vit: nn.Module) -> dict[str, Any]:
    """timm model name and the constructor arguments that shape its weights."""
    cfg = getattr(vit, "pretrained_cfg", None) or {}
    name = cfg.get("architecture") if isinstance(cfg, dict) else getattr(cfg, "architecture", None)
    if not name:
        raise TypeError("cannot describe a timm model without pretrained_cfg['architecture']")
    blk = vit.blocks[0]
    pe = vit.patch_embed
    kwargs = dict(
        img_size=[int(v) for v in pe.img_size],
        patch_size=int(pe.patch_size[0]) if pe.patch_size[0] == pe.patch_size[1]
        else [int(v) for v in pe.patch_size],
        embed_dim=int(vit.embed_dim),
        depth=len(vit.blocks),
        num_heads=int(blk.attn.num_heads),
        mlp_ratio=blk.mlp.fc1.out_features / vit.embed_dim,
        qkv_bias=blk.attn.qkv.bias is not None,
        qk_norm=not isinstance(blk.attn.q_norm, nn.Identity),
        init_values=1e-5 if not isinstance(blk.ls1, nn.Identity) else None,
        class_token=vit.cls_token is not None,
        reg_tokens=int(getattr(vit, "num_reg_tokens", 0)),
        no_embed_class=bool(getattr(vit, "no_embed_class", False)),
        pre_norm=not isinstance(getattr(vit, "norm_pre", nn.Identity()), nn.Identity),
        global_pool=str(getattr(vit, "global_pool", "token")),
        fc_norm=not isinstance(getattr(vit, "fc_norm", nn.Identity()), nn.Identity),
        dynamic_img_size=bool(getattr(vit, "dynamic_img_size", False)),
        num_classes=int(getattr(vit, "num_classes", 0)),
    )
    return {"kind": "timm", "name": str(name), "kwargs": kwargs}


def _vit_config(vit: nn.Module) -> dict[str, Any]:
    if isinstance(vit, VisionTransformer):
        return {"kind": "sureid", "kwargs": vit.config}
    if type(vit).__module__.startswith("timm."):
        return _timm_config(vit)
    raise TypeError(
        f"cannot describe a backbone of type {type(vit).__module__}.{type(vit).__name__}; "
        "sureid.VisionTransformer and timm VisionTransformer models can be saved"
    )


def model_config(model: ReIDModel, data_config: DataConfig | None = None) -> dict[str, Any]:
    """The architecture and preprocessing of ``model`` as plain Python values (no weights)."""
    if not isinstance(model, ReIDModel):
        raise TypeError(f"model must be a sureid ReIDModel, got {type(model).__name__}")
    hts = model.backbone
    if not isinstance(hts, HTSViT):
        raise TypeError(f"model.backbone must be a sureid.HTSViT, got {type(hts).__name__}")
    data = data_config if data_config is not None else resolve_data_config(model)
    return {
        "model": {
            "num_classes": int(model.num_classes),
            "reweight": model.reweight is not None,
            "eval_feature": str(model.eval_feature),
        },
        "hts": {
            "keep_ratio": [float(r) for r in hts.keep_ratios],
            "prune_layers": [int(i) for i in hts.prune_layers],
            "tau": float(hts.tau),
            "decision_hidden_dim": hts.decision_hidden_dim,
            "keep_score": hts.keep_score,
            "prune": bool(hts.prune),
            "compute_cls_attn": bool(hts.compute_cls_attn),
        },
        "vit": _vit_config(hts.backbone),
        "data": {
            "input_size": list(data.input_size),
            "mean": list(data.mean),
            "std": list(data.std),
        },
    }


def save_model(
    model: ReIDModel,
    path: str | os.PathLike,
    *,
    data_config: DataConfig | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (weights and architecture) to ``path``; see :meth:`ReIDModel.save`."""
    config = model_config(model, data_config)
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sureid_version": __version__,
        "config": config,
        "metadata": dict(metadata) if metadata else {},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return save_checkpoint(state, path)


# ----------------------------------------------------------------------------- rebuild
def _build_vit(cfg: dict[str, Any]) -> nn.Module:
    kind = cfg.get("kind")
    if kind == "sureid":
        return VisionTransformer(**cfg["kwargs"])
    if kind == "timm":
        timm = require("timm", purpose="loading a model with a timm backbone")
        kwargs = dict(cfg["kwargs"])
        if isinstance(kwargs.get("img_size"), list):
            kwargs["img_size"] = tuple(kwargs["img_size"])
        return timm.create_model(cfg["name"], pretrained=False, **kwargs)
    raise ModelFileError(f"unknown backbone kind {kind!r}")


def _build(config: dict[str, Any]) -> tuple[ReIDModel, DataConfig]:
    vit = _build_vit(config["vit"])
    h = config["hts"]
    hts = HTSViT(
        vit, keep_ratio=list(h["keep_ratio"]), prune_layers=list(h["prune_layers"]),
        tau=h["tau"], decision_hidden_dim=h["decision_hidden_dim"],
        keep_score=h.get("keep_score", "decision"), prune=h["prune"],
        compute_cls_attn=h["compute_cls_attn"],
    )
    m = config["model"]
    model = ReIDModel(
        hts, m["num_classes"], reweight=m["reweight"], eval_feature=m["eval_feature"]
    )
    d = config["data"]
    return model, DataConfig(tuple(d["input_size"]), tuple(d["mean"]), tuple(d["std"]))


def load(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> ReIDModel:
    """Rebuild a model written by :meth:`ReIDModel.save`, in eval mode.

    The returned model carries ``model.data_config`` (:class:`DataConfig`) and
    ``model.metadata`` (what was passed to ``save``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ModelFileError: not a sureid model file (e.g. a ``Trainer`` checkpoint, which holds
            weights without the architecture), a newer format, or weights that do not fit
            the recorded architecture; the message says which.

    Example:
        >>> model = sureid.load("runs/final.pt")  # doctest: +SKIP
        >>> feats = sureid.FeatureExtractor(model)("query/").features  # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{str(path)!r} is a folder, not a sureid model file")
    try:
        state = load_checkpoint(path, map_location=map_location)
    except FileNotFoundError:
        raise FileNotFoundError(f"model file not found: {str(path)!r}") from None
    except Exception as e:  # not a torch file, truncated, or objects refused by weights_only
        raise ModelFileError(f"{str(path)!r} is not a sureid model file: {e}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        if isinstance(state, dict) and "model" in state and "optimizer" in state:
            raise ModelFileError(
                f"{str(path)!r} is a training checkpoint (weights without the architecture); "
                "rebuild the model, load_state_dict(ckpt['model']) and write it with "
                "model.save(path)"
            )
        raise ModelFileError(
            f"{str(path)!r} is not a sureid model file (no {FORMAT!r} header); "
            "write one with ReIDModel.save(path)"
        )
    version = state.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ModelFileError(
            f"{str(path)!r} has model format version {version!r} (written by sureid "
            f"{state.get('sureid_version', '?')}); this sureid {__version__} reads versions "
            f"1 to {FORMAT_VERSION}: upgrade sureid"
        )
    try:
        model, data = _build(state["config"])
    except ImportError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{str(path)!r}: invalid architecture config ({e})") from e
    weights = state.get("state_dict")
    if not isinstance(weights, dict):
        raise ModelFileError(f"{str(path)!r} holds no state_dict")
    missing, unexpected = _key_mismatch(model, weights)
    if missing or unexpected:
        raise ModelFileError(
            f"the weights in {str(path)!r} do not fit the architecture recorded with them: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:  # shape mismatches
        msg = str(e).splitlines()
        raise ModelFileError(
            f"the weights in {str(path)!r} do not fit the architecture recorded with them: "
            f"{' '.join(line.strip() for line in msg[1:3]) or msg[0]}"
        ) from e
    model.data_config = data
    model.metadata = dict(state.get("metadata") or {})
    return model.to(map_location).eval()


def _key_mismatch(model: nn.Module, weights: dict) -> tuple[list[str], list[str]]:
    own = set(model.state_dict())
    given = set(weights)
    return sorted(own - given), sorted(given - own)
