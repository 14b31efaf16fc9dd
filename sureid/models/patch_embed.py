"""ViT stems: an image ``(B, C_in, H, W)`` to patch tokens ``(B, N, C)``, ``N = (H/p)(W/p)``.

:class:`PatchEmbed` is timm's one strided convolution; :class:`ConvStem` a drop-in with the
same attributes (``img_size``, ``patch_size``, ``grid_size``, ``num_patches``, ``proj``).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

__all__ = ["ConvStem", "PatchEmbed"]


class _GridEmbed(nn.Module):
    """Shared part of the stems: the token grid, the input check and ``(B, C, h, w) -> (B, N, C)``.

    Subclasses set ``proj`` (the last layer, whose weight ``VisionTransformer`` initialises)
    and implement ``_embed(x) -> (B, embed_dim, H/p, W/p)``.
    """

    def __init__(
        self, img_size: tuple[int, int], patch_size: tuple[int, int], in_chans: int
    ) -> None:
        super().__init__()
        if img_size[0] % patch_size[0] or img_size[1] % patch_size[1]:
            raise ValueError(
                f"img_size {img_size} must be divisible by patch_size {patch_size}"
            )
        self.img_size = img_size
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.grid_size = (img_size[0] // patch_size[0], img_size[1] // patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.strict_img_size = True

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # shape checks are skipped while tracing (ONNX export): shapes are static there
        if not torch.jit.is_tracing() and (
            x.ndim != 4 or x.shape[1] != self.in_chans or tuple(x.shape[-2:]) != self.img_size
        ):
            raise ValueError(
                f"expected images of shape (B, {self.in_chans}, {self.img_size[0]}, "
                f"{self.img_size[1]}), got {tuple(x.shape)}"
            )
        return rearrange(self._embed(x), "b c h w -> b (h w) c")


class PatchEmbed(_GridEmbed):
    """Image ``(B, C_in, H, W)`` to patch tokens ``(B, N, C)`` with ``N = (H/p)(W/p)``."""

    def __init__(
        self, *, img_size: tuple[int, int], patch_size: tuple[int, int], in_chans: int,
        embed_dim: int, bias: bool = True,
    ) -> None:
        super().__init__(img_size, patch_size, in_chans)
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size, bias=bias)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class ConvStem(_GridEmbed):
    """Convolutional stem (Xiao et al., 2021, "Early convolutions help transformers see
    better"): ``log2(p)`` stride-2 3×3 conv-BN-ReLU layers, then a 1×1 conv to ``embed_dim``.

    A drop-in for :class:`PatchEmbed` giving the same ``N`` tokens; the early convolutions
    give a small ViT trained from scratch the locality prior it lacks (``docs/hts.md``).

    Args:
        img_size, in_chans, embed_dim: as :class:`PatchEmbed`.
        patch_size: square, a power of two >= 2 (one stride-2 conv per factor of two).

    Shapes:
        ``(B, in_chans, H, W) -> (B, (H/p)(W/p), embed_dim)``.
    """

    def __init__(
        self, *, img_size: tuple[int, int], patch_size: tuple[int, int], in_chans: int,
        embed_dim: int,
    ) -> None:
        p = patch_size[0]
        if patch_size[0] != patch_size[1] or p < 2 or p & (p - 1):
            raise ValueError(
                f"stem='conv' needs a square power-of-two patch_size >= 2, got {patch_size}"
            )
        super().__init__(img_size, patch_size, in_chans)
        n = p.bit_length() - 1
        layers: list[nn.Module] = []
        c_in, c_out = in_chans, max(16, embed_dim >> n)
        for _ in range(n):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in, c_out = c_out, c_out * 2
        self.stem = nn.Sequential(*layers)
        self.proj = nn.Conv2d(c_in, embed_dim, 1)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.stem(x))
