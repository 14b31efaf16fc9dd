"""NODA: noise-occlusion data augmentation (SUReID, Sec. III-C, Fig. 5)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, TypeVar

import torch
from PIL import Image

from .._checks import check_real
from ._functional import (
    PIL_MODES,
    adjust_colour,
    check_float_range,
    check_pil_mode,
    check_range,
    paste,
    pil_to_tensor,
    resize_rgba,
    tensor_to_pil,
    to_channels,
)
from .occluders.bank import OccluderBank, OccluderSource

__all__ = ["NODA", "NODAParams"]

Placement = Literal["left", "right", "top", "bottom"]
ImageT = TypeVar("ImageT", Image.Image, torch.Tensor)


@dataclass(frozen=True)
class NODAParams:
    """Everything random about one NODA call, drawn up front by :meth:`NODA.make_params`.

    Attributes:
        index: which occluder of the bank.
        crop: (top, left, height, width) of the random crop, in occluder pixels.
        flip: horizontal flip of the (cropped) occluder.
        brightness, contrast, saturation: colour-jitter factors (1 = unchanged).
        fraction: U(scale), the band's share of the image width (vertical occluder) or
            height (horizontal occluder).
        far_side: ``False`` pastes at the left/top edge, ``True`` at the right/bottom edge.
        vertical: the occluder's own aspect h/w (before the crop) exceeds
            ``vertical_aspect``: a band along the left/right edge, else along the top/bottom.
    """

    index: int
    crop: tuple[int, int, int, int]
    flip: bool
    brightness: float
    contrast: float
    saturation: float
    fraction: float
    far_side: bool
    vertical: bool


class NODA:
    """Paste a real-world occluder as a band along one image edge (the paper's NODA).

    Per call, with probability ``p``: pick an occluder from the bank, randomly crop it
    (each side keeps a fraction U(``crop``)), flip it horizontally with probability
    ``hflip`` and jitter its colour. The occluder's own aspect α = h/w (of the whole
    occluder, before the crop, as in the paper) decides the type:

    * α > ``vertical_aspect`` (2 in the paper): vertical. Resized to ``(H, round(f·W))``
      with f ~ U(``scale``) and pasted at the left or the right edge.
    * otherwise horizontal: resized to ``(round(f·H), W)``, pasted at the top or bottom.

    Band sizes are rounded to the nearest pixel (at least 1). The occluder's alpha is
    respected: where it is 0 the image is unchanged bit for bit.

    Inputs: a PIL image in mode "RGB", "L", "RGBA" or "LA" (other modes raise
    ``ValueError``: convert first), or a tensor ``(..., C, H, W)`` with C in {1, 3},
    uint8 in [0, 255] or floating in [0, 1] (torchvision's convention; apply NODA before
    ``Normalize``): a floating tensor with values further than 0.1 outside [0, 1] (0-255
    floats, a normalised image, NaN) raises ``ValueError`` naming the range found. The output
    has the input's kind, mode, size, dtype and device; the input is never modified
    (when the augmentation is skipped the input object itself is returned, as
    torchvision does). Grey images get the occluder's luma. For "RGBA"/"LA" bases the
    colour is blended as if the base were opaque and the base alpha becomes
    ``a + a_occ·(1 - a)`` (the occluder is visible). All images of a batched tensor get
    the same occluder (torchvision's convention for batches).

    All randomness is drawn from torch's global RNG in :meth:`make_params`, so
    ``torch.manual_seed`` repeats a result and each DataLoader worker gets its own
    stream; :meth:`apply` is deterministic. The transform is picklable.

    Args:
        occluders: folder, list of paths / PIL images / tensors, or an :class:`OccluderBank`
            (see it for the loading and error policy). Prefer real occluder crops (bins,
            bikes, trees, poles); :func:`make_procedural_occluders` gives stand-ins.
        p: probability of occluding an image.
        scale: range of the band's share of the width / height, within (0, 1].
        vertical_aspect: α threshold above which an occluder is vertical.
        jitter: (brightness, contrast, saturation); each factor ~ U[max(0, 1 - j), 1 + j].
        crop: range of the fraction of each occluder side kept by the random crop, in (0, 1].
        hflip: probability of flipping the occluder horizontally.

    Example:
        >>> from sureid import NODA, make_procedural_occluders
        >>> noda = NODA(make_procedural_occluders(16, seed=0), p=1.0)
        >>> out = noda(torch.zeros(3, 256, 128, dtype=torch.uint8))
        >>> out.shape, out.dtype
        (torch.Size([3, 256, 128]), torch.uint8)
    """

    def __init__(
        self,
        occluders: OccluderSource,
        p: float = 0.5,
        scale: tuple[float, float] = (1 / 3, 1 / 2),
        *,
        vertical_aspect: float = 2.0,
        jitter: tuple[float, float, float] = (0.2, 0.2, 0.2),
        crop: tuple[float, float] = (0.8, 1.0),
        hflip: float = 0.5,
    ) -> None:
        self.p = check_real("p", p, low=0.0, high=1.0)
        self.scale = check_range("scale", scale, 0.0, 1.0)
        self.crop = check_range("crop", crop, 0.0, 1.0)
        self.vertical_aspect = check_real("vertical_aspect", vertical_aspect, low=0.0,
                                          high=math.inf, low_open=True, high_open=True)
        try:
            jit = () if isinstance(jitter, str) else tuple(jitter)
        except TypeError:  # not iterable
            jit = ()
        if len(jit) != 3:
            raise TypeError(f"jitter must be (brightness, contrast, saturation), got {jitter!r}")
        self.jitter: tuple[float, float, float] = tuple(  # type: ignore[assignment]
            check_real(f"jitter[{i}]", j, low=0.0, high=math.inf, high_open=True)
            for i, j in enumerate(jit)
        )
        self.hflip = check_real("hflip", hflip, low=0.0, high=1.0)
        self.bank = occluders if isinstance(occluders, OccluderBank) else OccluderBank(occluders)

    # -- randomness ------------------------------------------------------------------
    def make_params(
        self, height: int | None = None, width: int | None = None
    ) -> NODAParams | None:
        """Draw one call's randomness from torch's RNG; ``None`` means "leave the image".

        The draw does not depend on the image size (:meth:`layout` places it later);
        ``height``/``width`` are accepted so NODA and :class:`~sureid.RandomPatch` share one
        protocol, ``apply(image, make_params(H, W))``.
        """
        if self.p < 1.0 and not float(torch.rand(())) < self.p:
            return None
        index = int(torch.randint(len(self.bank), ()))
        u = torch.rand(10, dtype=torch.float64).tolist()
        h0, w0 = self.bank[index].shape[-2:]
        # the paper types an occluder by its own shape: a 2.2:1 pole cropped to 0.8 of its
        # height is still a pole, not a horizontal band
        vertical = h0 / w0 > self.vertical_aspect
        lo, hi = self.crop
        ch = min(h0, max(1, round((lo + (hi - lo) * u[0]) * h0)))
        cw = min(w0, max(1, round((lo + (hi - lo) * u[1]) * w0)))
        top = min(h0 - ch, int(u[2] * (h0 - ch + 1)))
        left = min(w0 - cw, int(u[3] * (w0 - cw + 1)))
        lows = [max(0.0, 1 - j) for j in self.jitter]
        jit = zip(lows, self.jitter, u[4:7], strict=True)
        b, c, s = (lo_ + (1 + j - lo_) * v for lo_, j, v in jit)
        a, bb = self.scale
        return NODAParams(
            index=index,
            crop=(top, left, ch, cw),
            flip=u[7] < self.hflip,
            brightness=b,
            contrast=c,
            saturation=s,
            fraction=a + (bb - a) * u[8],
            far_side=u[9] < 0.5,
            vertical=vertical,
        )

    def layout(self, params: NODAParams, height: int, width: int):
        """Where ``params`` puts the band on an ``height × width`` image.

        Returns:
            ``(placement, top, left, band_height, band_width)`` with placement one of
            "left", "right" (vertical occluders) or "top", "bottom" (horizontal ones).
        """
        if params.vertical:
            bw = min(width, max(1, round(params.fraction * width)))
            return ("right", 0, width - bw, height, bw) if params.far_side else (
                "left", 0, 0, height, bw)
        bh = min(height, max(1, round(params.fraction * height)))
        return ("bottom", height - bh, 0, bh, width) if params.far_side else (
            "top", 0, 0, bh, width)

    # -- deterministic application ---------------------------------------------------------
    def _occluder(self, params: NODAParams, size: tuple[int, int], channels: int):
        top, left, ch, cw = params.crop
        occ = self.bank[params.index][:, top : top + ch, left : left + cw]
        if params.flip:
            occ = occ.flip(-1)
        occ = occ.to(torch.float32) / 255.0
        rgb, alpha = occ[:3], occ[3:]
        opaque = bool((alpha == 1).all())
        rgb = adjust_colour(rgb, None if opaque else alpha, params.brightness,
                            params.contrast, params.saturation)
        rgb, alpha = resize_rgba(rgb, None if opaque else alpha, size)
        return to_channels(rgb, channels), alpha

    def apply_tensor(self, image: torch.Tensor, params: NODAParams,
                     alpha_channel: bool = False) -> torch.Tensor:
        """Apply ``params`` to ``image (..., C, H, W)``; returns a new tensor.

        With ``alpha_channel`` the last channel is an alpha plane that the occluder
        makes at least as opaque as itself.
        """
        H, W = image.shape[-2:]
        _, top, left, bh, bw = self.layout(params, H, W)
        colour = image.shape[-3] - int(alpha_channel)
        patch, alpha = self._occluder(params, (bh, bw), colour)
        if alpha_channel:
            patch = torch.cat([patch, torch.ones_like(patch[:1])])
        patch = patch.to(image.device)
        alpha = None if alpha is None else alpha.to(image.device)
        return paste(image, patch, alpha, top, left)

    def apply(self, image: ImageT, params: NODAParams | None) -> ImageT:
        """Deterministically apply ``params`` (from :meth:`make_params`) to ``image``.

        Raises as :meth:`__call__` does (when ``params`` is not None).
        """
        if params is None:
            return image
        self._check(image)
        return self._apply(image, params)

    def _apply(self, image: ImageT, params: NODAParams | None) -> ImageT:
        if params is None:
            return image
        if isinstance(image, Image.Image):
            has_alpha = PIL_MODES[image.mode][1]
            out = self.apply_tensor(pil_to_tensor(image), params, alpha_channel=has_alpha)
            return tensor_to_pil(out)
        out = self.apply_tensor(image.as_subclass(torch.Tensor), params)
        return out.as_subclass(type(image)) if type(image) is not torch.Tensor else out

    def _check(self, image) -> None:
        if isinstance(image, Image.Image):
            check_pil_mode(image, "NODA")
            return
        if not isinstance(image, torch.Tensor):
            raise TypeError(
                f"NODA expects a PIL image or a (..., C, H, W) tensor, got {type(image).__name__}"
            )
        if image.ndim < 3 or image.shape[-3] not in (1, 3) or 0 in image.shape[-2:]:
            raise ValueError(
                "NODA expects a tensor of shape (..., C, H, W) with C in {1, 3} and H, W > 0, "
                f"got {tuple(image.shape)}"
            )
        if image.dtype != torch.uint8 and not image.is_floating_point():
            raise TypeError(f"NODA expects a uint8 or floating tensor, got {image.dtype}")
        check_float_range(image, "NODA")

    def __call__(self, image: ImageT) -> ImageT:
        """Occlude ``image`` (PIL or ``(..., C, H, W)`` tensor) with probability ``p``.

        Raises:
            TypeError: not a PIL image or a uint8 / floating tensor.
            ValueError: an unsupported PIL mode or tensor shape, or a floating tensor with
                values outside [0, 1] (0-255 floats, a normalised image, NaN); checked
                whether or not this call occludes.
        """
        self._check(image)
        return self._apply(image, self.make_params())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(occluders={len(self.bank)}, p={self.p}, "
            f"scale=({self.scale[0]:.4g}, {self.scale[1]:.4g}), "
            f"vertical_aspect={self.vertical_aspect}, jitter={self.jitter}, "
            f"crop={self.crop}, hflip={self.hflip})"
        )
