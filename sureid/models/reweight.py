"""Class-token attention reweight head (Eqs. 7-8), a training-only auxiliary branch.

Reading of Eq. 8 used here (reasoning in ``docs/objectives.md``)::

    w_i    = Attn_cls[P + i] · D̂_i / Σ_j Attn_cls[P + j] · D̂_j      (i over the N patch tokens)
    x̃_cls  = x_cls + λ · Σ_i w_i · x_image,i                          (λ learnable, init 0.5)

``x̃_cls`` is an *extra* feature that the objective supervises with its own ID and triplet
losses (``SUReIDLoss(aux_weight=1.0)``, the default); the main class-token feature used at
inference is untouched, so the head costs nothing there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_bool, check_int, check_real
from .heads import BNNeck
from .output import HTSOutput

__all__ = ["ClsTokenReweight", "ReweightOutput", "cls_token_reweight"]


def cls_token_reweight(
    tokens: torch.Tensor,
    cls_attn: torch.Tensor,
    keep_mask: torch.Tensor | None = None,
    lam: torch.Tensor | float = 0.5,
    *,
    num_prefix_tokens: int = 1,
    normalize: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class token plus the class-attention-weighted sum of the kept patch tokens (Eq. 8).

    Args:
        tokens: ``(B, T, C)`` final tokens after the final norm, ``T = P + N``; the class token
            is ``tokens[:, 0]``.
        cls_attn: ``(B, T)`` last-block class-token attention averaged over heads (Eq. 7).
        keep_mask: ``(B, N)`` final keep mask ``D̂`` (straight-through values in {0, 1}), or
            ``None`` for all kept. Dropped tokens already get ~0 attention from the masked
            attention; multiplying again makes it exact and lets the aux loss reach the
            decision module.
        lam: ``λ``, scalar (tensor or float).
        num_prefix_tokens: ``P`` (class + register tokens; never reweighted).
        normalize: renormalise the patch weights to sum to 1 over the kept tokens, so the
            added term is a weighted mean on the scale of a token.

    Returns:
        ``(feature (B, C), weights (B, N))``.

    Raises:
        ValueError: shapes that do not line up (quoted in the message).

    Example:
        >>> f, w = cls_token_reweight(torch.randn(2, 5, 8), torch.softmax(torch.randn(2, 5), -1))
        >>> f.shape, w.shape
        (torch.Size([2, 8]), torch.Size([2, 4]))
    """
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3:
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"tokens must be (B, T, C), got {shape}")
    b, t, _ = tokens.shape
    check_int("num_prefix_tokens", num_prefix_tokens, low=1, high=t - 1)
    if not isinstance(cls_attn, torch.Tensor) or tuple(cls_attn.shape) != (b, t):
        shape = tuple(cls_attn.shape) if isinstance(cls_attn, torch.Tensor) else cls_attn
        raise ValueError(
            f"cls_attn must have shape (B, T) = {(b, t)} for tokens {tuple(tokens.shape)}, "
            f"got {shape}"
        )
    n = t - num_prefix_tokens
    weights = cls_attn[:, num_prefix_tokens:]
    if keep_mask is not None:
        if not isinstance(keep_mask, torch.Tensor) or tuple(keep_mask.shape) != (b, n):
            shape = tuple(keep_mask.shape) if isinstance(keep_mask, torch.Tensor) else keep_mask
            raise ValueError(
                f"keep_mask must have shape (B, N) = {(b, n)} for tokens {tuple(tokens.shape)} "
                f"with {num_prefix_tokens} prefix tokens, got {shape}"
            )
        weights = weights * keep_mask.to(weights.dtype)
    if normalize:
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-6)
    pooled = torch.einsum("bn,bnc->bc", weights, tokens[:, num_prefix_tokens:])
    return tokens[:, 0] + lam * pooled, weights


@dataclass
class ReweightOutput:
    """Output of :class:`ClsTokenReweight`.

    Attributes:
        feature: ``(B, C)`` reweighted class feature ``x̃_cls`` (pre-BN; for the triplet loss).
        logits: ``(B, K)`` logits of the head's own BNNeck, or ``None`` without ``num_classes``.
        weights: ``(B, N)`` patch weights used (for visualisation).
    """

    feature: torch.Tensor
    logits: torch.Tensor | None
    weights: torch.Tensor


class ClsTokenReweight(nn.Module):
    """Training-only class-token attention reweight head (Eqs. 7-8).

    Produces the auxiliary feature ``x̃_cls = x_cls + λ·Σ_i w_i x_i`` (see
    :func:`cls_token_reweight`) and, with ``num_classes``, its logits through a *separate*
    :class:`BNNeck` (a separate one so the auxiliary batches do not pollute the running
    statistics of the main BNNeck used at inference). Feed ``feature``/``logits`` to
    ``SUReIDLoss(..., aux_feat=, aux_logits=)``. ``HTSViT`` never calls it, so inference cost
    is zero; drop it (or ``SUReIDLoss(aux_weight=0)``) to ablate it.

    Args:
        embed_dim: ``C``.
        lambda_init: initial value of the learnable ``λ`` (0.5 in the paper).
        num_classes: ``K`` for the auxiliary BNNeck classifier, or ``None`` for feature only.
        normalize: see :func:`cls_token_reweight`.

    Example:
        >>> head = ClsTokenReweight(8, num_classes=3)
        >>> out = head(torch.randn(2, 5, 8), torch.softmax(torch.randn(2, 5), -1))
        >>> out.feature.shape, out.logits.shape
        (torch.Size([2, 8]), torch.Size([2, 3]))
    """

    def __init__(
        self,
        embed_dim: int,
        lambda_init: float = 0.5,
        *,
        num_classes: int | None = None,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.embed_dim = check_int("embed_dim", embed_dim, low=1)
        lambda_init = check_real("lambda_init", lambda_init, low=-math.inf, high=math.inf,
                                 low_open=True, high_open=True)
        self.normalize = check_bool("normalize", normalize)
        self.lam = nn.Parameter(torch.tensor(lambda_init))
        self.neck = None if num_classes is None else BNNeck(embed_dim, num_classes)

    def forward(
        self,
        tokens: torch.Tensor,
        cls_attn: torch.Tensor | None,
        keep_mask: torch.Tensor | None = None,
        *,
        num_prefix_tokens: int = 1,
    ) -> ReweightOutput:
        """``tokens (B, T, C)``, ``cls_attn (B, T)``, ``keep_mask (B, N)`` -> ReweightOutput."""
        if cls_attn is None:
            raise ValueError(
                "cls_attn is None: build the student so that it returns the last block's "
                "class-token attention (HTSOutput.cls_attn), or disable the reweight head"
            )
        if isinstance(tokens, torch.Tensor) and tokens.dim() == 3 and tokens.shape[2] != (
            self.embed_dim
        ):
            raise ValueError(
                f"tokens must have {self.embed_dim} channels, got shape {tuple(tokens.shape)}"
            )
        feature, weights = cls_token_reweight(
            tokens,
            cls_attn,
            keep_mask,
            self.lam,
            num_prefix_tokens=num_prefix_tokens,
            normalize=self.normalize,
        )
        logits = None
        if self.neck is not None:
            if self.neck.training:
                _, logits = self.neck(feature)
            else:  # eval-mode call (e.g. a validation loss): classifier on the BN feature
                logits = self.neck.classifier(self.neck.bn(feature))
        return ReweightOutput(feature=feature, logits=logits, weights=weights)

    def from_output(self, out: HTSOutput) -> ReweightOutput:
        """Run on an :class:`HTSOutput` (tokens, cls_attn, final keep mask, prefix count)."""
        if not isinstance(out, HTSOutput):
            raise TypeError(f"out must be an HTSOutput, got {type(out).__name__}")
        return self(
            out.tokens,
            out.cls_attn,
            out.final_mask,
            num_prefix_tokens=out.num_prefix_tokens,
        )

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, normalize={self.normalize}"
