"""The model file format: ``ReIDModel.save(path)`` and ``sureid.load(path)``.

One ``torch.save`` file holds the weights and everything needed to rebuild the network
without the code that trained it: the backbone (the constructor arguments recorded when it
was built: sureid's ``VisionTransformer.config``, or a timm name and arguments kept by
:func:`~sureid.models.create_timm_model`), the HTS stages (keep ratios, prune layers,
``prune``), the ReID head (number of classes, reweight head, eval feature) and the
preprocessing (:class:`~sureid.models.data_config.DataConfig`). It is written atomically and
read with ``torch.load(weights_only=True)``: only tensors and plain Python values, nothing is
unpickled as code. It lives with the models because :meth:`~sureid.ReIDModel.save` writes
it; :mod:`sureid.hub` is the public front.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checkpoint import load_checkpoint, save_checkpoint
from .._checks import check_device
from ..version import __version__
from .data_config import DataConfig, resolve_data_config
from .hts_vit import HTSViT
from .timm_backbone import rebuild_timm_model, timm_config
from .vit import VisionTransformer
from .weights_file import BACKBONE_FORMAT

__all__ = [
    "FORMAT", "FORMAT_VERSION", "ModelFileError", "load_model", "model_config", "save_model",
]

FORMAT = "sureid.model"
# Bump when the layout of the config changes; load() reads every version up to this one.
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A file that is not a sureid model, or whose weights do not fit its recorded architecture."""


def _vit_config(vit: nn.Module) -> dict[str, Any]:
    if isinstance(vit, VisionTransformer):
        return {"kind": "sureid", "kwargs": vit.config}
    if type(vit).__module__.startswith("timm."):
        return {"kind": "timm", **timm_config(vit)}
    raise TypeError(
        f"cannot describe a backbone of type {type(vit).__module__}.{type(vit).__name__}; "
        "sureid.VisionTransformer and timm VisionTransformer models can be saved"
    )


def model_config(model: nn.Module, data_config: DataConfig | None = None) -> dict[str, Any]:
    """The architecture and preprocessing of a :class:`~sureid.ReIDModel` as plain Python
    values (no weights); :func:`sureid.hub.model_config` checks the model's type first.

    Raises:
        TypeError: the backbone is not an ``HTSViT`` around a sureid or timm ViT, or
            ``data_config`` is not a :class:`DataConfig`.
        ValueError: ``data_config`` does not fit a fixed-size model, or a timm backbone
            without a record of its arguments (:func:`~sureid.models.timm_backbone.timm_config`).
    """
    hts = model.backbone
    if not isinstance(hts, HTSViT):
        raise TypeError(f"model.backbone must be a sureid.HTSViT, got {type(hts).__name__}")
    if data_config is not None and not isinstance(data_config, DataConfig):
        raise TypeError(f"data_config must be a DataConfig or None, got "
                        f"{type(data_config).__name__}")
    data = data_config if data_config is not None else resolve_data_config(model)
    vit = hts.backbone
    fixed = tuple(getattr(getattr(vit, "patch_embed", None), "img_size", None) or ())
    if fixed and not getattr(vit, "dynamic_img_size", False) and tuple(data.input_size) != fixed:
        # every FeatureExtractor call on the loaded model would fail at the model's size check
        raise ValueError(
            f"data_config.input_size {tuple(data.input_size)} does not fit the model, which "
            f"takes images of {fixed} (H, W) only (built without dynamic_img_size); save it "
            f"with DataConfig({fixed}, ...)"
        )
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
    model: nn.Module,
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
        return rebuild_timm_model(cfg)
    raise ModelFileError(f"unknown backbone kind {kind!r}")


def _build(config: dict[str, Any], model_cls: type[nn.Module]) -> tuple[nn.Module, DataConfig]:
    vit = _build_vit(config["vit"])
    h = config["hts"]
    hts = HTSViT(
        vit, keep_ratio=list(h["keep_ratio"]), prune_layers=list(h["prune_layers"]),
        tau=h["tau"], decision_hidden_dim=h["decision_hidden_dim"],
        keep_score=h.get("keep_score", "decision"), prune=h["prune"],
        compute_cls_attn=h["compute_cls_attn"],
    )
    m = config["model"]
    model = model_cls(
        hts, m["num_classes"], reweight=m["reweight"], eval_feature=m["eval_feature"]
    )
    d = config["data"]
    return model, DataConfig(tuple(d["input_size"]), tuple(d["mean"]), tuple(d["std"]))


def load_model(
    path: str | os.PathLike,
    *,
    map_location: str | torch.device = "cpu",
    model_cls: type[nn.Module],
) -> nn.Module:
    """Rebuild a model file as a ``model_cls`` (:class:`~sureid.ReIDModel`), in eval mode; what
    :func:`sureid.load` does (see there for what it raises)."""
    device = check_device("map_location", map_location)
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{str(path)!r} is a folder, not a sureid model file")
    try:  # read on the CPU: a device problem is never reported as a bad file
        state = load_checkpoint(path, map_location="cpu")
    except FileNotFoundError:
        raise FileNotFoundError(f"model file not found: {str(path)!r}") from None
    except Exception as e:  # not a torch file, truncated, or objects refused by weights_only
        raise ModelFileError(f"{str(path)!r} is not a sureid model file: {e}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        if isinstance(state, dict) and state.get("format") == BACKBONE_FORMAT:
            raise ModelFileError(
                f"{str(path)!r} holds backbone weights ({BACKBONE_FORMAT}), not a ReID model: "
                f"sureid.pretrained({str(path)!r}) builds the ViT they were made for, "
                "sureid.load_pretrained(model, path) loads them into a model"
            )
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
        model, data = _build(state["config"], model_cls)
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
    return model.to(device).eval()


def _key_mismatch(model: nn.Module, weights: dict) -> tuple[list[str], list[str]]:
    own = set(model.state_dict())
    given = set(weights)
    return sorted(own - given), sorted(given - own)
