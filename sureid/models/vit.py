"""sureid's own Vision Transformer, laid out exactly like timm's ``VisionTransformer``.

Module names, attributes and ``state_dict`` keys match timm (``patch_embed.proj``,
``cls_token``, ``reg_token``, ``pos_embed``, ``blocks.i.{norm1, attn.{qkv, q_norm, k_norm,
proj}, ls1, drop_path1, norm2, mlp.{fc1, fc2}, ls2, drop_path2}``, ``norm``, ``head``), so a
timm/DeiT checkpoint loads with ``load_state_dict`` and one HTS adapter serves both. No
timm needed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .._checks import check_bool, check_int, check_real, check_size, is_real

__all__ = ["ConvStem", "PatchEmbed", "VisionTransformer", "deit_small", "deit_tiny", "vit_base"]


def _check_rate(name: str, value: object) -> float:
    return check_real(name, value, low=0.0, high=1.0, high_open=True)


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

    A drop-in for :class:`PatchEmbed` (same attributes: ``img_size``, ``patch_size``,
    ``grid_size``, ``num_patches``, ``proj``), giving the same ``N`` tokens. Early
    convolutions give a small ViT trained from scratch the locality prior it lacks, for a
    small share of the forward; what it gains and costs on the synthetic quick preset is
    measured in ``docs/hts.md`` ("Measurements behind the docstrings").

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


class Attention(nn.Module):
    """Multi-head self-attention with ``F.scaled_dot_product_attention``; timm names."""

    def __init__(
        self, dim: int, *, num_heads: int, qkv_bias: bool, qk_norm: bool, attn_drop: float,
        proj_drop: float,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_dim = dim
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(attn_drop)
        self.norm = nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = rearrange(self.qkv(x), "b t (qkv h d) -> qkv b h t d", qkv=3, h=self.num_heads)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        p = self.attn_drop.p if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        x = self.norm(rearrange(x, "b h t d -> b t (h d)"))
        return self.proj_drop(self.proj(x))


class LayerScale(nn.Module):
    """Per-channel scale ``x * gamma`` (timm's parameter name ``gamma``)."""

    def __init__(self, dim: int, init_values: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class DropPath(nn.Module):
    """Stochastic depth per sample (training only)."""

    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """``fc1 -> GELU -> fc2`` with timm names."""

    def __init__(self, dim: int, hidden: int, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(
        self, dim: int, *, num_heads: int, mlp_ratio: float, qkv_bias: bool, qk_norm: bool,
        init_values: float | None, drop_path: float, attn_drop: float, proj_drop: float,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(
            dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_norm=qk_norm,
            attn_drop=attn_drop, proj_drop=proj_drop,
        )
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), proj_drop)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class VisionTransformer(nn.Module):
    """ViT/DeiT backbone with timm's layout; ``forward`` returns the class-token embedding.

    Args:
        img_size: ``H`` or ``(H, W)``; inputs must have exactly this size.
        patch_size: ``p`` or ``(p_h, p_w)``; must divide ``img_size``.
        in_chans: image channels.
        embed_dim, depth, num_heads, mlp_ratio: the usual ViT sizes.
        qkv_bias, qk_norm: bias on the qkv projection; LayerNorm on q and k per head.
        init_values: LayerScale init (``None`` or 0: no LayerScale).
        class_token: prepend a class token (``HTSViT`` requires one).
        reg_tokens: number of register tokens after the class token.
        no_embed_class: position embeddings cover patches only (DeiT-III, DINOv2 style).
        pre_norm: LayerNorm before the blocks (``norm_pre``, CLIP style).
        num_classes: size of a linear ``head`` on the class token (0: none).
        drop_path_rate: stochastic depth, linearly increasing to this value.
        pos_drop_rate, attn_drop_rate, proj_drop_rate: dropout rates.
        stem: ``"patch"`` (one strided conv, timm's ``PatchEmbed``) or ``"conv"``
            (:class:`ConvStem`: better for training from scratch on small data).

    Shapes:
        ``forward_features(x (B, in_chans, H, W)) -> (B, P + N, C)`` after the final norm;
        ``forward(x) -> (B, C)`` (or ``(B, num_classes)`` with a head).

    Example:
        >>> vit = VisionTransformer(img_size=(32, 16), patch_size=8, embed_dim=32, depth=2,
        ...                         num_heads=2)
        >>> vit(torch.randn(2, 3, 32, 16)).shape
        torch.Size([2, 32])
    """

    def __init__(
        self,
        *,
        img_size: int | tuple[int, int] = (256, 128),
        patch_size: int | tuple[int, int] = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_norm: bool = False,
        init_values: float | None = None,
        class_token: bool = True,
        reg_tokens: int = 0,
        no_embed_class: bool = False,
        pre_norm: bool = False,
        num_classes: int = 0,
        drop_path_rate: float = 0.0,
        pos_drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        stem: str = "patch",
    ) -> None:
        super().__init__()
        img_size = check_size("img_size", img_size, square=True)
        patch_size = check_size("patch_size", patch_size, square=True)
        in_chans = check_int("in_chans", in_chans, low=1)
        embed_dim = check_int("embed_dim", embed_dim, low=1)
        depth = check_int("depth", depth, low=1)
        num_heads = check_int("num_heads", num_heads, low=1)
        reg_tokens = check_int("reg_tokens", reg_tokens, low=0)
        num_classes = check_int("num_classes", num_classes, low=0)
        if embed_dim % num_heads:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        if (
            not is_real(mlp_ratio)
            or not 0 < mlp_ratio < math.inf
        ):
            raise ValueError(f"mlp_ratio must be a positive finite float, got {mlp_ratio!r}")
        if init_values is not None and (
            not is_real(init_values)
        ):
            raise TypeError(f"init_values must be a float or None, got {init_values!r}")
        if init_values is not None and not math.isfinite(init_values):
            raise ValueError(f"init_values must be a finite float or None, got {init_values!r}")
        drop_path_rate = _check_rate("drop_path_rate", drop_path_rate)
        rates = {
            name: _check_rate(name, value)
            for name, value in (
                ("pos_drop_rate", pos_drop_rate),
                ("attn_drop_rate", attn_drop_rate),
                ("proj_drop_rate", proj_drop_rate),
            )
        }
        for name, flag in (("qkv_bias", qkv_bias), ("qk_norm", qk_norm),
                           ("class_token", class_token), ("no_embed_class", no_embed_class),
                           ("pre_norm", pre_norm)):
            check_bool(name, flag)

        self.num_classes = num_classes
        self.embed_dim = self.num_features = embed_dim
        self.has_class_token = class_token
        self.num_reg_tokens = reg_tokens
        self.num_prefix_tokens = int(class_token) + reg_tokens
        self.no_embed_class = no_embed_class
        self.dynamic_img_size = False

        if stem == "patch":
            self.patch_embed: nn.Module = PatchEmbed(
                img_size=img_size, patch_size=patch_size, in_chans=in_chans,
                embed_dim=embed_dim, bias=not pre_norm,
            )
        elif stem == "conv":
            self.patch_embed = ConvStem(
                img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim,
            )
        else:
            raise ValueError(f"stem must be 'patch' or 'conv', got {stem!r}")
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, reg_tokens, embed_dim)) if reg_tokens else None
        embed_len = num_patches if no_embed_class else num_patches + self.num_prefix_tokens
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_len, embed_dim))
        self.pos_drop = nn.Dropout(rates["pos_drop_rate"])
        self.patch_drop = nn.Identity()
        self.norm_pre = nn.LayerNorm(embed_dim, eps=1e-6) if pre_norm else nn.Identity()
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.Sequential(*[
            Block(
                embed_dim, num_heads=num_heads, mlp_ratio=float(mlp_ratio), qkv_bias=qkv_bias,
                qk_norm=qk_norm, init_values=init_values, drop_path=dpr[i],
                attn_drop=rates["attn_drop_rate"], proj_drop=rates["proj_drop_rate"],
            )
            for i in range(depth)
        ])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes else nn.Identity()
        # the validated constructor arguments, so a saved model can be rebuilt (sureid.load)
        self._config = dict(
            img_size=list(img_size), patch_size=list(patch_size), in_chans=in_chans,
            embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=float(mlp_ratio),
            qkv_bias=qkv_bias, qk_norm=qk_norm,
            init_values=None if init_values is None else float(init_values),
            class_token=class_token, reg_tokens=reg_tokens, no_embed_class=no_embed_class,
            pre_norm=pre_norm, num_classes=num_classes, drop_path_rate=drop_path_rate,
            stem=stem, **rates,
        )
        self._init_weights()

    @property
    def config(self) -> dict:
        """The constructor arguments (plain Python values): ``VisionTransformer(**vit.config)``
        builds the same architecture."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._config.items()}

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        if self.reg_token is not None:
            nn.init.normal_(self.reg_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        w = self.patch_embed.proj.weight
        nn.init.trunc_normal_(w, std=math.sqrt(1.0 / w[0].numel()))
        for m in self.patch_embed.modules():
            if isinstance(m, nn.Conv2d) and m is not self.patch_embed.proj:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        """Add position embeddings, prepend class/register tokens: ``(B, N, C) -> (B, P+N, C)``."""
        prefix = []
        if self.cls_token is not None:
            prefix.append(self.cls_token.expand(x.shape[0], -1, -1))
        if self.reg_token is not None:
            prefix.append(self.reg_token.expand(x.shape[0], -1, -1))
        if self.no_embed_class:
            x = x + self.pos_embed
            if prefix:
                x = torch.cat([*prefix, x], dim=1)
        else:
            if prefix:
                x = torch.cat([*prefix, x], dim=1)
            x = x + self.pos_embed
        return self.pos_drop(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm_pre(self.patch_drop(self._pos_embed(self.patch_embed(x))))
        return self.norm(self.blocks(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        pooled = x[:, 0] if self.cls_token is not None else x[:, self.num_prefix_tokens :].mean(1)
        return self.head(pooled)


def _build(
    embed_dim: int, num_heads: int, *, img_size: int | tuple[int, int],
    patch_size: int | tuple[int, int],
    depth: int, reg_tokens: int, no_embed_class: bool, num_classes: int, drop_path_rate: float,
) -> VisionTransformer:
    return VisionTransformer(
        img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
        num_heads=num_heads, reg_tokens=reg_tokens, no_embed_class=no_embed_class,
        num_classes=num_classes, drop_path_rate=drop_path_rate,
    )


def deit_tiny(
    *, img_size: int | tuple[int, int] = (256, 128), patch_size: int | tuple[int, int] = 16,
    depth: int = 12, reg_tokens: int = 0, no_embed_class: bool = False, num_classes: int = 0,
    drop_path_rate: float = 0.0,
) -> VisionTransformer:
    """DeiT-Ti shape: 192 dim, 3 heads, 12 blocks (timm ``deit_tiny_patch16_224`` keys)."""
    return _build(192, 3, img_size=img_size, patch_size=patch_size, depth=depth,
                  reg_tokens=reg_tokens, no_embed_class=no_embed_class, num_classes=num_classes,
                  drop_path_rate=drop_path_rate)


def deit_small(
    *, img_size: int | tuple[int, int] = (256, 128), patch_size: int | tuple[int, int] = 16,
    depth: int = 12, reg_tokens: int = 0, no_embed_class: bool = False, num_classes: int = 0,
    drop_path_rate: float = 0.0,
) -> VisionTransformer:
    """DeiT-S shape: 384 dim, 6 heads, 12 blocks (timm ``deit_small_patch16_224`` keys).

    Example:
        >>> deit_small(img_size=(256, 128)).patch_embed.num_patches
        128
    """
    return _build(384, 6, img_size=img_size, patch_size=patch_size, depth=depth,
                  reg_tokens=reg_tokens, no_embed_class=no_embed_class, num_classes=num_classes,
                  drop_path_rate=drop_path_rate)


def vit_base(
    *, img_size: int | tuple[int, int] = (256, 128), patch_size: int | tuple[int, int] = 16,
    depth: int = 12, reg_tokens: int = 0, no_embed_class: bool = False, num_classes: int = 0,
    drop_path_rate: float = 0.0,
) -> VisionTransformer:
    """ViT-B shape: 768 dim, 12 heads, 12 blocks (timm ``vit_base_patch16_224`` keys)."""
    return _build(768, 12, img_size=img_size, patch_size=patch_size, depth=depth,
                  reg_tokens=reg_tokens, no_embed_class=no_embed_class, num_classes=num_classes,
                  drop_path_rate=drop_path_rate)
