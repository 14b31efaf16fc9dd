"""How images are prepared for a model: input size and normalisation (:class:`DataConfig`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from .._checks import check_real, check_size

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "DataConfig", "input_size_of", "resolve_data_config"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_tuple(value: object) -> object:
    """Any iterable but a string as a tuple (lists, numpy arrays); anything else unchanged."""
    if isinstance(value, (str, bytes)):
        return value
    try:
        return tuple(value)
    except TypeError:
        return value


def _rgb(name: str, value: object, low: float) -> tuple[float, float, float]:
    values = _as_tuple(value)
    if not isinstance(values, tuple):
        raise TypeError(f"{name} must be 3 numbers (R, G, B), got {value!r}")
    if len(values) != 3:
        raise ValueError(f"{name} must be 3 numbers (R, G, B), got {len(values)}: {value!r}")
    return tuple(check_real(f"{name}[{i}]", v, low=low, high=math.inf, low_open=True,
                            high_open=True) for i, v in enumerate(values))


@dataclass(frozen=True)
class DataConfig:
    """How images are prepared for a model (timm's ``data_config``, reduced to what ReID uses).

    An image is converted to RGB, resized to ``input_size`` ``(H, W)`` with antialiased
    bilinear interpolation (torchvision's ``v2.Resize(antialias=True)``), scaled to [0, 1]
    and normalised with ``mean`` / ``std``.

    Raises:
        TypeError: ``input_size`` is not a pair of ints, ``mean``/``std`` not numbers.
        ValueError: a size below 1, not 3 values, a mean that is not finite or a std that
            is not positive and finite (the message names the entry).
    """

    input_size: tuple[int, int]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size",
                           check_size("input_size", _as_tuple(self.input_size)))
        object.__setattr__(self, "mean", _rgb("mean", self.mean, low=-math.inf))
        object.__setattr__(self, "std", _rgb("std", self.std, low=0.0))


def input_size_of(model: nn.Module) -> tuple[int, int]:
    """The ``(H, W)`` input size of a ViT, or of the ViT a model wraps as ``.backbone``."""
    vit = model
    while not hasattr(vit, "patch_embed") and isinstance(getattr(vit, "backbone", None),
                                                         nn.Module):
        vit = vit.backbone
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
    return DataConfig(input_size_of(model))
