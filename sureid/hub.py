"""Self-describing model files, the public front: ``sureid.load(path)``, ``save_model`` and
the checks around them. The format itself (what one file holds, how it is written and read)
is :mod:`sureid.models.model_file`.

Example:
    >>> model.save("runs/final.pt")  # doctest: +SKIP
    >>> model = sureid.load("runs/final.pt")  # eval mode, model.data_config set  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .models import model_file
from .models.data_config import IMAGENET_MEAN, IMAGENET_STD, DataConfig, resolve_data_config
from .models.model_file import FORMAT, FORMAT_VERSION, ModelFileError
from .models.pretrained import backbone_file_info
from .models.reid_model import ReIDModel

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DataConfig",
    "ModelFileError",
    "describe_backbone_file",
    "load",
    "model_config",
    "resolve_data_config",
    "save_model",
]


def _check_model(model: object) -> None:
    if not isinstance(model, ReIDModel):
        raise TypeError(f"model must be a sureid ReIDModel, got {type(model).__name__}")


def model_config(model: ReIDModel, data_config: DataConfig | None = None) -> dict[str, Any]:
    """The architecture and preprocessing of ``model`` as plain Python values (no weights)."""
    _check_model(model)
    return model_file.model_config(model, data_config)


def save_model(
    model: ReIDModel,
    path: str | os.PathLike,
    *,
    data_config: DataConfig | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (weights and architecture) to ``path``; see :meth:`ReIDModel.save`."""
    _check_model(model)
    return model_file.save_model(model, path, data_config=data_config, metadata=metadata)


def load(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> ReIDModel:
    """Rebuild a model written by :meth:`ReIDModel.save`, in eval mode.

    The returned model carries ``model.data_config`` (:class:`DataConfig`) and
    ``model.metadata`` (what was passed to ``save``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``map_location`` names no device this machine has (``"cuda"`` without
            CUDA, a bad name); raised before the file is read, not reported as a bad file.
        ModelFileError: not a sureid model file (e.g. a ``Trainer`` checkpoint, which holds
            weights without the architecture), a newer format, or weights that do not fit
            the recorded architecture; the message says which.

    Example:
        >>> model = sureid.load("runs/final.pt")  # doctest: +SKIP
        >>> feats = sureid.FeatureExtractor(model)("query/").features  # doctest: +SKIP
    """
    return ReIDModel.load(path, map_location=map_location)


def describe_backbone_file(path: str | os.PathLike) -> str | None:
    """A few lines about a sureid backbone weights file (what ``sureid info`` prints), or
    ``None`` when ``path`` is not one (a model file, a checkpoint).

    A missing path, a folder or an unreadable file also gives ``None``: the model-file
    reader (:func:`load`) then says what is wrong with it.
    """
    if not Path(path).is_file():
        return None
    try:
        info = backbone_file_info(path)
    except (ValueError, OSError):
        return None
    if info is None:
        return None
    arch, (h, w) = info["arch"], info["img_size"]
    if arch.get("timm_name"):
        net = f"timm {arch['timm_name']}"
    else:
        net = (f"sureid VisionTransformer, {arch['embed_dim']}-d, depth {arch['depth']}, "
               f"{arch['num_heads']} heads, patch {arch['patch_size']}, "
               f"{arch.get('stem', 'patch')} stem")
    prov = info["provenance"]
    lines = [
        f"{path}: backbone weights ({info['format']}): {net}, input {h}x{w}",
        f"  parameters: {info['num_params'] / 1e6:.2f} M (stored in fp16); a reference output "
        "is checked on load",
    ]
    shown = {k: prov[k] for k in ("command", "seed", "epochs", "steps", "commit") if k in prov}
    if shown:
        lines.append(f"  provenance: {shown}")
    lines.append(f"  load: sureid.pretrained({str(path)!r}) (the ViT), or "
                 "sureid.load_pretrained(model, path)")
    return "\n".join(lines)
