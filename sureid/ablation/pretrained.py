"""Small pretrained ViT backbones: saved in fp16 with a reference output, loaded and checked.

The file format and its readers live in :mod:`sureid.models.pretrained` (``sureid.pretrained``
builds the recorded ViT and loads a file, ``sureid.load_pretrained`` loads one into a model);
this module writes the files and keeps the ablation's loader.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checkpoint import load_checkpoint, save_checkpoint
from ..models.pretrained import BACKBONE_FORMAT as FORMAT
from ..models.pretrained import backbone_reference as _fingerprint
from ..models.pretrained import probe_images

__all__ = ["FORMAT", "load_backbone_weights", "probe_images", "save_backbone_weights"]


def save_backbone_weights(
    vit: nn.Module, path: str | os.PathLike, *, arch: dict[str, Any], img_size: tuple[int, int],
    provenance: dict[str, Any],
) -> Path:
    """Write ``vit``'s weights in fp16 with its architecture, provenance and a reference output.

    The reference is the fp16 model's ``(4, C)`` output on :func:`probe_images`, so a loader can
    check that what it built gives the features the weights gave when they were saved.
    """
    half = {k: v.detach().to(torch.float16) if v.is_floating_point() else v.detach()
            for k, v in vit.state_dict().items()}
    rounded = copy.deepcopy(vit).to("cpu", torch.float32)
    rounded.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
    reference = _fingerprint(rounded, img_size)
    return save_checkpoint({"format": FORMAT, "arch": dict(arch), "img_size": list(img_size),
                            "state_dict": half, "reference": reference,
                            "provenance": dict(provenance)}, path)


def load_backbone_weights(
    vit: nn.Module, path: str | os.PathLike, *, arch: dict[str, Any] | None = None,
    check: bool = True, atol: float = 1e-3,
) -> dict[str, Any]:
    """Load weights written by :func:`save_backbone_weights` into ``vit`` (in place, fp32).

    Args:
        vit: the ViT (``HTSViT.backbone`` for an HTS model) the weights were made for.
        arch: when given, must equal the architecture stored in the file.
        check: recompute the reference output and compare it (``atol``).

    Returns:
        The file's provenance dict.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a sureid backbone file, another architecture, or the reference output
            differs (the weights do not give the features they gave when saved).
    """
    state = load_checkpoint(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a sureid backbone file ({FORMAT})")
    if arch is not None and dict(arch) != state["arch"]:
        raise ValueError(f"{str(path)!r} holds weights for arch {state['arch']}, not {dict(arch)}")
    sd = {k: v.float() if v.is_floating_point() else v for k, v in state["state_dict"].items()}
    vit.load_state_dict(sd)
    if check:
        got = _fingerprint(vit, tuple(state["img_size"]))
        ref = state["reference"]
        if got.shape != ref.shape or not torch.allclose(got, ref, atol=atol, rtol=0):
            err = (got - ref).abs().max().item() if got.shape == ref.shape else "shape"
            raise ValueError(f"{str(path)!r}: the loaded backbone's reference output differs "
                             f"from the saved one (max abs diff {err})")
    return dict(state["provenance"])
