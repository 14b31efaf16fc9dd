"""sureid's own Vision Transformer, laid out exactly like timm's ``VisionTransformer``.

Module names, attributes and ``state_dict`` keys match timm (``patch_embed.proj``,
``cls_token``, ``reg_token``, ``pos_embed``, ``blocks.i.{norm1, attn.{qkv, q_norm, k_norm,
proj}, ls1, drop_path1, norm2, mlp.{fc1, fc2}, ls2, drop_path2}``, ``norm``, ``head``), so a
timm/DeiT checkpoint loads with ``load_state_dict`` and one HTS adapter serves both. No
timm needed.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .._checks import check_bool, check_int, check_real, check_size
from .patch_embed import ConvStem, PatchEmbed

__all__ = ["VisionTransformer", "deit_small", "deit_tiny", "vit_base"]


def _check_rate(name: str, value: object) -> float:
    return check_real(name, value, low=0.0, high=1.0, high_open=True)


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
        mlp_ratio = check_real("mlp_ratio", mlp_ratio, low=0.0, high=math.inf, low_open=True,
                               high_open=True)
        if init_values is not None:
            init_values = check_real("init_values", init_values, low=-math.inf, high=math.inf,
                                     low_open=True, high_open=True)
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


def deit_tiny(**kwargs: Any) -> VisionTransformer:
    """DeiT-Ti shape: 192 dim, 3 heads, 12 blocks (timm ``deit_tiny_patch16_224`` keys);
    ``kwargs`` are further :class:`VisionTransformer` arguments (``img_size``, ``depth``, ...)."""
    return VisionTransformer(embed_dim=192, num_heads=3, **kwargs)


def deit_small(**kwargs: Any) -> VisionTransformer:
    """DeiT-S shape: 384 dim, 6 heads, 12 blocks (timm ``deit_small_patch16_224`` keys);
    ``kwargs`` are further :class:`VisionTransformer` arguments (``img_size``, ``depth``, ...).

    Example:
        >>> deit_small(img_size=(256, 128)).patch_embed.num_patches
        128
    """
    return VisionTransformer(embed_dim=384, num_heads=6, **kwargs)


def vit_base(**kwargs: Any) -> VisionTransformer:
    """ViT-B shape: 768 dim, 12 heads, 12 blocks (timm ``vit_base_patch16_224`` keys);
    ``kwargs`` are further :class:`VisionTransformer` arguments (``img_size``, ``depth``, ...)."""
    return VisionTransformer(embed_dim=768, num_heads=12, **kwargs)
