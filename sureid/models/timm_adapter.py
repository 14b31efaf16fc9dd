"""Maps a timm-layout ``VisionTransformer`` onto the HTS functions in :mod:`sureid.models.hts`.

Works for timm's ``VisionTransformer`` and for :class:`sureid.VisionTransformer` (same
layout). It calls the wrapped model's own submodules (``patch_embed``, ``_pos_embed``,
``blk.norm1``, ``blk.attn.qkv``, ``blk.ls1``, ...) instead of copying their maths, guards
optional parts with ``getattr``, and keeps no state. timm itself is never imported here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .hts import masked_attention

__all__ = [
    "block_forward_cls_attention",
    "block_forward_masked",
    "check_vit_structure",
    "embed_tokens",
    "pool_tokens",
]

# timm's global_pool values HTS reproduces; attention pooling ("map", "prr") and no pooling
# ("") are refused: they have no defined meaning on a pruned token set here
_POOLS = ("token", "avg", "max", "avgmax")
_BLOCK_PARTS = ("norm1", "attn", "ls1", "drop_path1", "norm2", "mlp", "ls2", "drop_path2")
_ATTN_PARTS = ("qkv", "num_heads", "proj")


def check_vit_structure(vit: object, *, name: str = "vit") -> None:
    """Raise a clear ``TypeError``/``ValueError`` unless ``vit`` has the timm ViT layout.

    Required: ``patch_embed``, ``_pos_embed``, ``blocks`` of pre-norm blocks with a fused
    ``attn.qkv``, ``norm``, ``num_prefix_tokens`` and a class token; no active patch dropout;
    ``global_pool`` (when present) one of ``"token"``, ``"avg"``, ``"max"``, ``"avgmax"``
    and no attention pooling.
    """
    if not isinstance(vit, nn.Module):
        raise TypeError(f"{name} must be a VisionTransformer nn.Module, got {type(vit).__name__}")
    for part in ("patch_embed", "_pos_embed", "blocks", "norm", "num_prefix_tokens"):
        if not hasattr(vit, part):
            raise ValueError(
                f"{name} must have the timm VisionTransformer layout; "
                f"{type(vit).__name__} has no {part!r}"
            )
    if getattr(vit, "cls_token", None) is None:
        raise ValueError(
            f"{name} must have a class token (class_token=True); {type(vit).__name__} has "
            "cls_token=None, and HTS returns the class-token embedding"
        )
    if len(vit.blocks) < 1:
        raise ValueError(f"{name} must have at least one block, got 0")
    for i, blk in enumerate(vit.blocks):
        missing = [p for p in _BLOCK_PARTS if not hasattr(blk, p)]
        if hasattr(blk, "attn"):
            missing += [f"attn.{p}" for p in _ATTN_PARTS if not hasattr(blk.attn, p)]
        if missing:
            raise ValueError(
                f"{name}.blocks[{i}] ({type(blk).__name__}) is not a pre-norm ViT block with "
                f"fused qkv attention: missing {missing}"
            )
    pool = getattr(vit, "global_pool", "token")
    if getattr(vit, "attn_pool", None) is not None or pool not in _POOLS:
        raise ValueError(
            f"{name} pools its tokens with global_pool={pool!r}; HTSViT reproduces "
            f"global_pool in {_POOLS} (then fc_norm), not attention pooling ('map', 'prr') "
            "or no pooling (''); build the model with global_pool='token' or 'avg'"
        )
    patch_drop = getattr(vit, "patch_drop", None)
    if patch_drop is not None and getattr(patch_drop, "prob", 0.0) > 0:
        raise ValueError(
            f"{name} uses patch dropout (prob={patch_drop.prob}); it changes the token set and "
            "cannot be combined with HTS. Build the model with patch_drop_rate=0."
        )


def embed_tokens(vit: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Images ``(B, C_in, H, W)`` to the token sequence ``(B, P + N, C)`` entering block 0."""
    x = vit._pos_embed(vit.patch_embed(x))
    patch_drop = getattr(vit, "patch_drop", None)
    if patch_drop is not None:
        x = patch_drop(x)
    norm_pre = getattr(vit, "norm_pre", None)
    if norm_pre is not None:
        x = norm_pre(x)
    return x


def pool_tokens(
    vit: nn.Module, x: torch.Tensor, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """The wrapped model's embedding ``(B, C)`` from its final-norm tokens ``(B, T, C)``.

    Pools as the model does (``vit.global_pool``: the class token by default, or ``"avg"``,
    ``"max"``, ``"avgmax"`` over the patch tokens, with the prefix tokens too when
    ``pool_include_prefix``), then applies its ``fc_norm`` if it has one; timm's
    ``forward_head(x, pre_logits=True)`` in eval mode. On a pruned token set, average and max
    run over the kept tokens only.

    One deliberate exception: a distilled DeiT (timm ``VisionTransformerDistilled``, prefix
    tokens ``[cls, dist]``) gives its **class token** ``x[:, 0]``, where timm's head
    averages the class and distillation tokens. The paper distils and reweights the class
    token (Sec. III-B, Eqs. 7-8), the reweight head adds to the class token, and the
    distillation token was trained to mimic a CNN teacher's ImageNet labels, not ReID
    identities; it still runs in every block and is never dropped (``docs/hts.md``).

    Args:
        vit: a timm-layout ViT that passed :func:`check_vit_structure`.
        x: ``(B, T, C)`` tokens after ``vit.norm``; physically pruned ones are simply absent.
        keep: ``(B, T)`` keep mask (training path, nothing removed), or ``None``. A masked
            average weights each token by its mask value, so straight-through gradients reach
            the decisions as they do through the masked attention.
    """
    pool = getattr(vit, "global_pool", "token")
    if pool == "token":
        feat = x[:, 0]
    elif keep is None and hasattr(vit, "pool"):
        feat = vit.pool(x)  # timm's own pooling
    else:
        start = 0 if getattr(vit, "pool_include_prefix", False) else int(vit.num_prefix_tokens)
        tokens = x[:, start:]
        if keep is None:
            keep = x.new_ones(x.shape[:2])
        weight = keep[:, start:].to(x.dtype).unsqueeze(-1)  # (B, T', 1)
        count = weight.sum(dim=1)  # (B, 1); a row that kept nothing pools to zeros, not NaN
        if pool in ("avg", "avgmax"):
            avg = (tokens * weight).sum(dim=1) / count.clamp(min=1.0)
        if pool in ("max", "avgmax"):
            largest = tokens.masked_fill(weight == 0, float("-inf")).amax(dim=1)
            largest = torch.where(count > 0, largest, torch.zeros_like(largest))
        feat = avg if pool == "avg" else largest if pool == "max" else 0.5 * (largest + avg)
    fc_norm = getattr(vit, "fc_norm", None)
    return fc_norm(feat) if fc_norm is not None else feat


def block_forward_masked(
    blk: nn.Module, x: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pre-norm block with the masked attention of Eqs. 4-6.

    Args:
        blk: a timm-layout block.
        x: ``(B, T, C)`` tokens.
        keep: ``(B, T)`` keep mask over all tokens (prefix entries 1).

    Returns:
        The block output ``(B, T, C)`` and the class-token attention ``(B, T)`` averaged
        over heads (Eq. 7, from the masked attention).
    """
    attn = blk.attn

    def attend(q, k, v):
        out, weights = masked_attention(
            q, k, v, keep, scale=getattr(attn, "scale", None), dropout_p=_dropout_p(attn)
        )
        return out, weights[:, :, 0].mean(dim=1)

    return _block_forward(blk, x, attend)


def block_forward_cls_attention(
    blk: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pre-norm block, unmasked, that also returns its class-token attention.

    The block's output as ``blk(x)`` computes it (``F.scaled_dot_product_attention``), and
    row 0 of its attention weights averaged over heads, from the block's own ``q`` and
    ``k``: one ``(1 x D) @ (D x T)`` product per head, no extra weight read. The inference
    path of ``HTSViT(keep_score="attention")`` runs the block before each pruning stage with
    it.

    Shapes:
        ``x (B, T, C) -> (B, T, C), (B, T)``; the second is float32, rows summing to 1.
    """
    attn = blk.attn

    def attend(q, k, v):
        scale = getattr(attn, "scale", None)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=_dropout_p(attn), scale=scale)
        scale = q.shape[-1] ** -0.5 if scale is None else scale
        logits = (q[:, :, :1] @ k.transpose(-2, -1)).float() * scale  # (B, H, 1, T)
        return out, logits.softmax(dim=-1).mean(dim=1)[:, 0]

    return _block_forward(blk, x, attend)


def _block_forward(blk: nn.Module, x: torch.Tensor, attend) -> tuple[torch.Tensor, torch.Tensor]:
    """A timm-layout pre-norm block whose attention core is ``attend(q, k, v) -> (out, cls)``
    (``(B, H, T, D)`` each in, ``(B, H, T, D)`` and ``(B, T)`` out)."""
    attn = blk.attn
    h = blk.norm1(x)
    num_heads = attn.num_heads
    gate_layer = getattr(attn, "gate", None)
    gate = gate_layer(h).sigmoid() if gate_layer is not None else None
    q, k, v = rearrange(attn.qkv(h), "b t (qkv h d) -> qkv b h t d", qkv=3, h=num_heads).unbind(0)
    q_norm, k_norm = getattr(attn, "q_norm", None), getattr(attn, "k_norm", None)
    if q_norm is not None:
        q = q_norm(q)
    if k_norm is not None:
        k = k_norm(k)
    out, cls = attend(q, k, v)
    out = rearrange(out, "b h t d -> b t (h d)")
    out_norm = getattr(attn, "norm", None)
    if out_norm is not None:
        out = out_norm(out)
    if gate is not None:
        out = out * gate
    out = attn.proj(out)
    proj_drop = getattr(attn, "proj_drop", None)
    if proj_drop is not None:
        out = proj_drop(out)
    x = x + blk.drop_path1(blk.ls1(out))
    x = x + blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(x))))
    return x, cls


def _dropout_p(attn: nn.Module) -> float:
    attn_drop = getattr(attn, "attn_drop", None)
    return attn_drop.p if attn.training and isinstance(attn_drop, nn.Dropout) else 0.0
