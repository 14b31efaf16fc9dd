"""Reading weights files: timm, DeiT and TransReID checkpoints, safetensors, sureid backbones.

Everything is read with ``torch.load(weights_only=True)`` (or safetensors): tensors and plain
values only, nothing unpickled as code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .._optional import require

__all__ = [
    "BACKBONE_FORMAT", "PretrainedWeightsError", "backbone_info", "read_weights",
    "state_dict_of",
]

# sureid's backbone weight files: {"format", "arch", "img_size", "state_dict" (fp16),
# "reference" (the (4, C) output on probe_images), "provenance"}
BACKBONE_FORMAT = "sureid-backbone-v1"
# the arch keys a backbone file may hold (VisionTransformer arguments, or a timm model name)
_ARCH_KEYS = ("embed_dim", "depth", "num_heads", "patch_size", "stem", "timm_name")

# wrappers around the weights in training checkpoints, tried in this order
_CONTAINERS = ("state_dict", "model", "module", "net", "state_dict_ema", "model_ema")


class PretrainedWeightsError(ValueError):
    """A weights file that cannot be read, or whose weights do not fit the model."""


def read_weights(path: Path) -> object:
    """The content of a ``.pth``/``.pt``/``.bin`` or ``.safetensors`` file.

    Raises:
        PretrainedWeightsError: the file cannot be read (the message names the path).
    """
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


def state_dict_of(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a file's content, unwrapped from up to three containers
    (``{"model": {"state_dict": ...}}``)."""
    for _ in range(3):
        # a container holding a mapping is the weights even beside top-level tensors (a
        # sureid backbone file keeps its reference output beside "state_dict")
        if isinstance(obj, Mapping):
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


def backbone_info(obj: object, path: Path) -> dict[str, Any] | None:
    """What a sureid backbone file records besides its weights (``format``, ``arch``,
    ``img_size``, ``provenance``); ``None`` for other files."""
    if not isinstance(obj, Mapping) or obj.get("format") != BACKBONE_FORMAT:
        return None
    arch, size = obj.get("arch"), obj.get("img_size")
    if (not isinstance(arch, Mapping) or set(arch) - set(_ARCH_KEYS)
            or not isinstance(size, (list, tuple)) or len(size) != 2
            or not isinstance(obj.get("state_dict"), Mapping)
            or not isinstance(obj.get("reference"), torch.Tensor)):
        raise PretrainedWeightsError(
            f"{path} says it is a {BACKBONE_FORMAT} file but lacks its arch (keys among "
            f"{list(_ARCH_KEYS)}), img_size (H, W), state_dict or reference output"
        )
    return {"format": BACKBONE_FORMAT, "arch": dict(arch),
            "img_size": (int(size[0]), int(size[1])),
            "provenance": dict(obj.get("provenance") or {})}
