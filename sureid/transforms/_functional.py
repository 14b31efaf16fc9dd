"""Plain tensor functions behind the sureid transforms (no torchvision needed).

Conventions: images are ``(..., C, H, W)`` tensors; uint8 images are in ``[0, 255]``,
floating images in ``[0, 1]``. Occluder patches are float ``(C, h, w)`` in ``[0, 1]``
with a separate alpha ``(1, h, w)`` in ``[0, 1]``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .._checks import is_real

# PIL modes the transforms accept: mode -> (colour channels, has alpha)
PIL_MODES: dict[str, tuple[int, bool]] = {
    "RGB": (3, False),
    "RGBA": (3, True),
    "L": (1, False),
    "LA": (1, True),
}

_LUMA = (0.299, 0.587, 0.114)


def check_pil_mode(img: Image.Image, who: str) -> None:
    """Raise ``ValueError`` for a PIL mode the transforms do not handle (e.g. "P", "1", "I;16")."""
    if img.mode not in PIL_MODES:
        raise ValueError(
            f"{who}: unsupported PIL image mode {img.mode!r}; expected one of "
            f"{sorted(PIL_MODES)}; convert first, e.g. img.convert('RGB')"
        )
    if img.width < 1 or img.height < 1:
        raise ValueError(f"{who}: image must be non-empty, got size {img.size}")


# Floating images may overshoot [0, 1] this much (bicubic / Lanczos resizing rings by a few
# hundredths); anything further out is another convention (0-255 floats, mean/std-normalised).
FLOAT_RANGE_SLACK = 0.1


def check_float_range(img: torch.Tensor, who: str, what: str = "image") -> None:
    """``ValueError`` unless a floating ``img`` holds finite values in [0, 1] (uint8: no check).

    torchvision's convention: uint8 images are in [0, 255], floating ones in [0, 1]. A float
    image in 0-255 or normalised with mean/std would be blended with an occluder on the wrong
    scale, so it is refused, naming the range found. Values within ``FLOAT_RANGE_SLACK`` of
    [0, 1] are accepted (resampling overshoot). A normalised image that happens to lie within
    [0, 1] cannot be told apart and is not caught.
    """
    if not img.is_floating_point() or img.numel() == 0:
        return
    lo, hi = (float(v) for v in torch.aminmax(img.detach()))
    if -FLOAT_RANGE_SLACK <= lo and hi <= 1 + FLOAT_RANGE_SLACK:  # False for NaN
        return
    if not (np.isfinite(lo) and np.isfinite(hi)):
        hint = "it holds NaN or infinite values"
    elif lo >= -FLOAT_RANGE_SLACK:
        hint = ("it looks like a 0-255 image: divide it by 255 or pass uint8 "
                "(NODA goes before v2.ToDtype(torch.float32, scale=True) in a pipeline)")
    else:
        hint = "it looks normalised (mean/std): NODA goes before Normalize in a pipeline"
    raise ValueError(
        f"{who}: a floating {what} must hold values in [0, 1] (uint8 in [0, 255], torchvision's "
        f"convention), got {img.dtype} values in [{lo:.4g}, {hi:.4g}]; {hint}"
    )


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image (mode in ``PIL_MODES``) -> uint8 tensor ``(C, H, W)``; a new, writable copy."""
    arr = np.array(img, dtype=np.uint8, copy=True)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """uint8 tensor ``(C, H, W)`` with C in {1, 2, 3, 4} -> PIL "L", "LA", "RGB" or "RGBA"."""
    arr = t.permute(1, 2, 0).contiguous().numpy()
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return Image.fromarray(arr)


def to_float(t: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` -> float32 ``[0, 1]``; floating tensors are returned as they are."""
    if t.dtype == torch.uint8:
        return t.to(torch.float32) / 255.0
    return t


def from_float(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Inverse of :func:`to_float`: round and clamp to uint8, or cast to ``dtype``."""
    if dtype == torch.uint8:
        return (t * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    return t.to(dtype)


def to_channels(rgb: torch.Tensor, channels: int) -> torch.Tensor:
    """``(3, h, w)`` colour -> ``(channels, h, w)``: luma for 1 channel, identity for 3."""
    if channels == rgb.shape[0]:
        return rgb
    if channels == 1 and rgb.shape[0] == 3:
        w = rgb.new_tensor(_LUMA).view(3, 1, 1)
        return (rgb * w).sum(0, keepdim=True)
    if rgb.shape[0] == 1:
        return rgb.expand(channels, *rgb.shape[1:])
    raise ValueError(f"cannot convert {rgb.shape[0]} colour channels to {channels}")


def adjust_colour(
    rgb: torch.Tensor,
    alpha: torch.Tensor | None,
    brightness: float,
    contrast: float,
    saturation: float,
) -> torch.Tensor:
    """Colour jitter with fixed factors (1 = unchanged), in that order; ``rgb`` is ``(3, h, w)``.

    Contrast blends towards the mean grey level of the visible (alpha-weighted) pixels,
    so transparent parts of an occluder do not shift it.
    """
    out = rgb * brightness if brightness != 1.0 else rgb
    out = out.clamp(0, 1)
    if contrast != 1.0:
        grey = to_channels(out, 1)
        if alpha is not None and float(alpha.sum()) > 0:
            mean = (grey * alpha).sum() / alpha.sum()
        else:
            mean = grey.mean()
        out = (contrast * out + (1 - contrast) * mean).clamp(0, 1)
    if saturation != 1.0:
        grey = to_channels(out, 1)
        out = (saturation * out + (1 - saturation) * grey).clamp(0, 1)
    return out


def resize_rgba(rgb: torch.Tensor, alpha: torch.Tensor | None, size: tuple[int, int]):
    """Resize colour ``(C, h, w)`` and alpha ``(1, h, w)`` to ``size=(H', W')``.

    Bilinear with antialiasing on premultiplied colour, so colours of fully transparent
    pixels never bleed into the visible ones. Alpha values within 1e-4 of 0 or 1 are
    snapped, so transparent stays exactly transparent and opaque exactly opaque.
    Returns ``(rgb (C, H', W'), alpha (1, H', W') or None)``.
    """
    if tuple(rgb.shape[-2:]) == tuple(size):
        return rgb, alpha

    def _resize(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(
            x[None], size=size, mode="bilinear", align_corners=False, antialias=True
        )[0]

    if alpha is None:
        return _resize(rgb).clamp_(0, 1), None
    both = _resize(torch.cat([rgb * alpha, alpha]))
    a = both[-1:].clamp(0, 1)
    a = torch.where(a < 1e-4, torch.zeros_like(a), a)
    a = torch.where(a > 1 - 1e-4, torch.ones_like(a), a)
    colour = (both[:-1] / both[-1:].clamp_min(1e-6)).clamp_(0, 1)
    return colour, a


def paste(
    image: torch.Tensor,
    patch: torch.Tensor,
    alpha: torch.Tensor | None,
    top: int,
    left: int,
) -> torch.Tensor:
    """Alpha-composite ``patch`` onto a copy of ``image`` with its top-left corner at (top, left).

    Args:
        image: ``(..., C, H, W)`` uint8 in [0, 255] or floating in [0, 1]; not modified.
        patch: ``(C, h, w)`` floating in [0, 1]; must fit inside the image.
        alpha: ``(1, h, w)`` in [0, 1], or ``None`` for an opaque patch. Where alpha is 0
            the image is unchanged bit for bit; where it is 1 the patch replaces it.

    Returns:
        A new tensor like ``image`` (same shape and dtype).
    """
    c, h, w = patch.shape
    H, W = image.shape[-2:]
    if c != image.shape[-3] or top < 0 or left < 0 or top + h > H or left + w > W:
        raise ValueError(
            f"patch {tuple(patch.shape)} at (top={top}, left={left}) does not fit "
            f"image {tuple(image.shape)}"
        )
    out = image.clone()
    region = out[..., top : top + h, left : left + w]
    work = torch.promote_types(image.dtype, torch.float32) if image.is_floating_point() else None
    p = patch.to(work or torch.float32)
    if alpha is None:
        region.copy_(from_float(p, image.dtype).expand_as(region))
        return out
    a = alpha.to(p.dtype)
    base = to_float(region).to(p.dtype)
    blended = from_float(base * (1 - a) + p * a, image.dtype)
    # where alpha is 0 keep the original values exactly (no float round trip)
    region.copy_(torch.where(a > 0, blended, region))
    return out


def check_range(name: str, value, lo_open: float, hi: float) -> tuple[float, float]:
    """``(a, b)`` from a pair of numbers with ``lo_open < a <= b <= hi``.

    Raises:
        TypeError: not a pair of real numbers (``bool`` and strings included).
        ValueError: outside the bounds, or ``min > max``; the message quotes ``value``.
    """
    try:
        items = () if isinstance(value, (str, bytes)) else tuple(value)
    except TypeError:  # not iterable
        items = ()
    if len(items) != 2 or not all(is_real(v) for v in items):
        raise TypeError(f"{name} must be a pair of numbers (min, max), got {value!r}")
    a, b = float(items[0]), float(items[1])
    if not lo_open < a <= b <= hi:  # also False for NaN
        raise ValueError(f"{name} must satisfy {lo_open} < min <= max <= {hi}, got {value!r}")
    return a, b
