"""Argument checks of :class:`~sureid.HTSViT`: stage ratios, prune layers, keep masks, images.

Each raises ``TypeError`` for a wrong kind of value and ``ValueError`` for a wrong value,
naming the argument and quoting what was given.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_int, check_real, is_real

__all__ = ["check_images", "check_keep_masks", "check_prune_layers", "stage_ratios"]


def _check_sequence(name: str, value: object, what: str) -> list:
    if isinstance(value, (str, torch.Tensor)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of {what}, got {type(value).__name__}")
    return list(value)


def stage_ratios(
    keep_ratio: float | Sequence[float], num_stages: int, name: str = "keep_ratio"
) -> tuple[float, ...]:
    """Per-stage keep ratios: ``p`` gives ``(p, p^2, ..., p^S)``; a sequence is checked to
    hold ``S`` non-increasing ratios in ``(0, 1]`` (the masks are cumulative)."""
    if is_real(keep_ratio):
        p = check_real(name, keep_ratio, low=0.0, high=1.0, low_open=True)
        return tuple(p ** (s + 1) for s in range(num_stages))
    if isinstance(keep_ratio, bool):
        raise TypeError(f"{name} must be a float or a sequence of floats, got {keep_ratio!r}")
    ratios = _check_sequence(name, keep_ratio, "floats (one per stage) or a float")
    if len(ratios) != num_stages:
        raise ValueError(
            f"{name} lists one ratio per stage: expected {num_stages} values "
            f"(one per prune_layers entry), got {len(ratios)}: {ratios}"
        )
    ratios = [check_real(f"{name}[{s}]", r, low=0.0, high=1.0, low_open=True)
              for s, r in enumerate(ratios)]
    if any(b > a for a, b in zip(ratios, ratios[1:], strict=False)):
        raise ValueError(
            f"{name} entries must be non-increasing (masks are cumulative), got {ratios}"
        )
    return tuple(ratios)


def check_prune_layers(prune_layers: Sequence[int], depth: int) -> tuple[int, ...]:
    """Block indices before which to prune: at least one, strictly increasing, in the model."""
    layers = _check_sequence("prune_layers", prune_layers, "block indices")
    if not layers:
        raise ValueError("prune_layers must name at least one block, got []")
    layers = [check_int(f"prune_layers[{s}]", i) for s, i in enumerate(layers)]
    if not all(0 <= i < depth for i in layers):
        raise ValueError(
            f"prune_layers entries must be block indices in [0, {depth - 1}] for a "
            f"{depth}-block model, got {layers}"
        )
    if any(b <= a for a, b in zip(layers, layers[1:], strict=False)):
        raise ValueError(f"prune_layers must be strictly increasing, got {layers}")
    return tuple(layers)


def check_keep_masks(
    keep_masks: Sequence[torch.Tensor], num_stages: int, b: int, n: int
) -> list[torch.Tensor]:
    """``num_stages`` hard ``(B, N)`` masks (0/1 or bool), each a subset of the one before."""
    masks = _check_sequence("keep_masks", keep_masks, f"{num_stages} (B, N) tensors")
    if len(masks) != num_stages or any(
        not isinstance(m, torch.Tensor) or m.shape != (b, n) for m in masks
    ):
        shapes = [tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
                  for m in masks]
        raise ValueError(
            f"keep_masks must be {num_stages} tensors of shape (B, N) = {(b, n)}, got {shapes}"
        )
    previous = None
    for s, m in enumerate(masks):
        if m.dtype != torch.bool and not bool(((m == 0) | (m == 1)).all()):
            bad = m[(m != 0) & (m != 1)].flatten()[:3].tolist()
            raise ValueError(
                f"keep_masks[{s}] must hold only 0 and 1 (hard keep decisions), got "
                f"values such as {bad}"
            )
        if previous is not None and bool((m.to(previous.dtype) > previous).any()):
            raise ValueError(
                f"keep_masks must be cumulative (a token dropped at stage s stays dropped), "
                f"but keep_masks[{s}] keeps tokens that keep_masks[{s - 1}] dropped"
            )
        previous = m.float()
    return masks


def check_images(x: object, vit: nn.Module) -> None:
    """``x`` is a ``(B, C, H, W)`` floating batch that ``vit`` can take: its weights' dtype
    (or under autocast) and, unless it resizes dynamically, its input size."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"images must have shape (B, C, H, W), got {shape}")
    # dtype only (metadata, no device sync): torch's conv error names neither the images
    # nor the fix. Autocast casts float16/bfloat16/float32 inputs itself, never float64.
    # the class token's dtype is the weights' (HTSViT needs one); read from the parameter
    # dict, where vit.parameters() walks a generator (~10 us a forward, 0.5 % of the quick
    # model's batch-1 time; docs/hts.md, "Fused decision")
    weight = vit._parameters.get("cls_token")
    if weight is None:
        weight = next(vit.parameters(), None)
    if not x.is_floating_point():
        raise TypeError(
            f"images must be a floating tensor normalised as for the model, got {x.dtype}; "
            "convert uint8 images with sureid.preprocess or sureid.FeatureExtractor, which "
            "apply the model's own resize, scale and mean/std"
        )
    if (
        weight is not None
        and x.dtype != weight.dtype
        and (x.dtype == torch.float64 or not torch.is_autocast_enabled(x.device.type))
    ):
        raise TypeError(
            f"images are {x.dtype} but the model's weights are {weight.dtype}; cast them "
            f"with images.to({weight.dtype}), or run under torch.autocast"
        )
    pe = vit.patch_embed
    img_size = getattr(pe, "img_size", None)
    if (
        img_size is not None
        and not getattr(vit, "dynamic_img_size", False)
        and not torch.jit.is_tracing()  # static shapes under ONNX export
        and getattr(pe, "strict_img_size", True)
        and tuple(x.shape[-2:]) != tuple(img_size)
    ):
        raise ValueError(
            f"images must be {tuple(img_size)} (H, W) for this model (built without "
            f"dynamic_img_size), got {tuple(x.shape[-2:])}"
        )
