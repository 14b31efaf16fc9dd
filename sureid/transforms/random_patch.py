"""RandomPatch and the random-erasing setting of the paper's first batch (Sec. III-C)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from PIL import Image

from .._checks import check_int, check_real
from .._optional import require
from ._functional import (
    check_float_range,
    check_pil_mode,
    check_range,
    from_float,
    pil_to_tensor,
    tensor_to_pil,
    to_float,
)

__all__ = ["RandomPatch", "RandomPatchParams", "reid_random_erasing"]

ImageT = TypeVar("ImageT", Image.Image, torch.Tensor)

_ATTEMPTS = 10


@dataclass(frozen=True)
class RandomPatchParams:
    """One call's randomness. ``harvest``: (top, left, h, w) of the patch taken from this
    image into the pool, or ``None``; ``paste``: whether to paste; ``pick``, ``y``, ``x``
    in [0, 1): which pool patch and where (scaled to the pool size / free room at apply
    time); ``flip``: flip the pasted patch horizontally."""

    harvest: tuple[int, int, int, int] | None
    paste: bool
    pick: float
    y: float
    x: float
    flip: bool


class RandomPatch:
    """Paste a patch cropped from an earlier training image (Zhou et al., OSNet, 2019).

    Every call crops a random patch (area U(``area``)·H·W, aspect h/w U(``ratio``), the
    first of 10 tries that fits, like the reference implementation) from the image into a
    FIFO pool of ``pool_capacity`` patches. Once the pool holds ``min_sample_size`` patches, with
    probability ``p`` a random pool patch (flipped with probability ``hflip``) is pasted,
    opaque, at a uniformly random position. Patches larger than the image are cropped to
    fit; a patch whose channel count differs from the image's is not pasted. The
    reference's small random rotation is omitted (it fills corners with black).

    The pool is state: each DataLoader worker keeps its own (as in the reference). All
    randomness comes from torch's RNG (:meth:`make_params`), so seeded runs repeat.

    Inputs: a PIL image ("RGB", "L", "RGBA", "LA") or a ``(C, H, W)`` tensor, uint8 or
    floating; the output has the same kind, mode, size and dtype and the input is never
    modified (the input object itself is returned when nothing is pasted). Patches are
    copied as they are between images of one dtype (any value range); a patch pasted
    between uint8 and floating images is rescaled, which needs floats in [0, 1]: outside
    that range it raises ``ValueError`` naming the range found.

    Args:
        p: probability of pasting once the pool is warm.
        pool_capacity: maximum number of patches kept (oldest dropped first).
        min_sample_size: pool size needed before pasting starts, in [1, ``pool_capacity``].
        area: patch area as a fraction of the image area, within (0, 1].
        ratio: patch aspect h/w range, > 0.
        hflip: probability of flipping a pasted patch.

    Raises:
        TypeError: a number of the wrong type (``pool_capacity=2.0``, ``p="0.5"``).
        ValueError: a probability outside [0, 1], a size or range out of bounds.

    Example:
        >>> rp = RandomPatch(p=1.0, min_sample_size=1)
        >>> out = rp(torch.rand(3, 64, 32))
        >>> out.shape
        torch.Size([3, 64, 32])
    """

    def __init__(
        self,
        p: float = 0.5,
        *,
        pool_capacity: int = 50000,
        min_sample_size: int = 100,
        area: tuple[float, float] = (0.01, 0.5),
        ratio: tuple[float, float] = (0.1, 10.0),
        hflip: float = 0.5,
    ) -> None:
        self.p = check_real("p", p, low=0.0, high=1.0)
        self.pool_capacity = check_int("pool_capacity", pool_capacity, low=1)
        self.min_sample_size = check_int("min_sample_size", min_sample_size, low=1,
                                         high=self.pool_capacity)
        self.area = check_range("area", area, 0.0, 1.0)
        self.ratio = check_range("ratio", ratio, 0.0, math.inf)
        self.hflip = check_real("hflip", hflip, low=0.0, high=1.0)
        self.pool: deque[torch.Tensor] = deque(maxlen=pool_capacity)

    def make_params(self, height: int, width: int) -> RandomPatchParams:
        """Draw one call's randomness for an ``height × width`` image."""
        u = torch.rand(_ATTEMPTS, 2, dtype=torch.float64)
        harvest = None
        for a_u, r_u in u.tolist():
            target = (self.area[0] + (self.area[1] - self.area[0]) * a_u) * height * width
            aspect = self.ratio[0] + (self.ratio[1] - self.ratio[0]) * r_u
            h = round(math.sqrt(target * aspect))
            w = round(math.sqrt(target / aspect))
            if 1 <= h < height and 1 <= w < width:
                harvest = (h, w)
                break
        v = torch.rand(6, dtype=torch.float64).tolist()
        box = None
        if harvest is not None:
            h, w = harvest
            box = (int(v[0] * (height - h + 1)), int(v[1] * (width - w + 1)), h, w)
        return RandomPatchParams(
            harvest=box, paste=v[2] < self.p, pick=v[3], y=v[4], x=v[5],
            flip=bool(torch.rand(()) < self.hflip),
        )

    def apply(self, image: ImageT, params: RandomPatchParams) -> ImageT:
        """Harvest into the pool and maybe paste, as ``params`` says (mutates the pool only)."""
        if isinstance(image, Image.Image):
            check_pil_mode(image, "RandomPatch")
            t = pil_to_tensor(image)
            out = self._apply_tensor(t, params)
            return image if out is t else tensor_to_pil(out)
        plain = image.as_subclass(torch.Tensor)
        out = self._apply_tensor(plain, params)
        if out is plain:
            return image
        return out.as_subclass(type(image)) if type(image) is not torch.Tensor else out

    def _apply_tensor(self, image: torch.Tensor, params: RandomPatchParams) -> torch.Tensor:
        if params.harvest is not None:
            top, left, h, w = params.harvest
            self.pool.append(image[:, top : top + h, left : left + w].detach().cpu().clone())
        if len(self.pool) < self.min_sample_size or not params.paste:
            return image
        patch = self.pool[min(len(self.pool) - 1, int(params.pick * len(self.pool)))]
        if patch.shape[0] != image.shape[0]:
            return image
        H, W = image.shape[-2:]
        patch = patch[:, :H, :W]
        if params.flip:
            patch = patch.flip(-1)
        if patch.dtype != image.dtype:
            if (patch.dtype == torch.uint8) != (image.dtype == torch.uint8):
                # uint8 <-> float assumes floats in [0, 1]; 0-255 or normalised floats would
                # be pasted on the wrong scale
                check_float_range(image, "RandomPatch")
                check_float_range(patch, "RandomPatch", "pool patch (from an earlier image)")
            patch = from_float(to_float(patch), image.dtype)
        ph, pw = patch.shape[-2:]
        y, x = int(params.y * (H - ph + 1)), int(params.x * (W - pw + 1))
        out = image.clone()
        out[:, y : y + ph, x : x + pw] = patch.to(image.device)
        return out

    def __call__(self, image: ImageT) -> ImageT:
        """Harvest a patch from ``image`` and, once the pool is warm, maybe paste one."""
        if isinstance(image, Image.Image):
            check_pil_mode(image, "RandomPatch")
            H, W = image.height, image.width
        elif isinstance(image, torch.Tensor):
            if image.ndim != 3 or 0 in image.shape:
                raise ValueError(
                    f"RandomPatch expects a (C, H, W) tensor, got shape {tuple(image.shape)}"
                )
            if image.dtype != torch.uint8 and not image.is_floating_point():
                raise TypeError(
                    f"RandomPatch expects a uint8 or floating tensor, got {image.dtype}"
                )
            H, W = image.shape[-2:]
        else:
            raise TypeError(
                "RandomPatch expects a PIL image or a (C, H, W) tensor, "
                f"got {type(image).__name__}"
            )
        return self.apply(image, self.make_params(H, W))

    def __repr__(self) -> str:
        return (
            f"RandomPatch(p={self.p}, pool_capacity={self.pool_capacity}, "
            f"min_sample_size={self.min_sample_size}, area={self.area}, ratio={self.ratio}, "
            f"hflip={self.hflip}, pool={len(self.pool)})"
        )


def reid_random_erasing(
    p: float = 0.5,
    *,
    scale: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 3.3),
    value: Any = "random",
) -> Any:
    """torchvision's ``v2.RandomErasing`` with the ReID setting (Zhong et al., AAAI 2020).

    The paper's first batch uses random erasing "setting pixels to zero or random values":
    ``value="random"`` (default) fills with normal noise, ``value=0`` with zeros. Needs
    torchvision (extra ``sureid[vision]``). It works on tensors: place it after
    ``v2.ToImage()``/``v2.ToDtype`` (and, as usual in ReID, after ``Normalize``).

    Example:
        >>> erase = reid_random_erasing(p=1.0)  # doctest: +SKIP
        >>> erase(torch.rand(3, 256, 128)).shape  # doctest: +SKIP
        torch.Size([3, 256, 128])
    """
    v2 = require("torchvision.transforms.v2", purpose="reid_random_erasing")
    return v2.RandomErasing(p=p, scale=scale, ratio=ratio, value=value)
