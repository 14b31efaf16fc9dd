"""Hierarchical token sparsification (HTS) as plain tensor functions (Sec. III-A).

These functions are the algorithm; :class:`sureid.HTSViT` only wires them into a ViT.
They serve training, inference, tests and ONNX export alike and know nothing about timm.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange

from .._amp import autocast_enabled, fp32, no_autocast
from .._checks import check_int, check_real

__all__ = [
    "gather_tokens",
    "gumbel_keep_decision",
    "masked_attention",
    "num_kept_tokens",
    "select_topk_tokens",
    "topk_keep_mask",
]


def num_kept_tokens(num_patches: int, ratio: float) -> int:
    """Patch tokens kept at a stage with target ``ratio`` of the original ``num_patches``.

    Rounding: ``k = max(1, floor(ratio * num_patches + 1e-6))`` (floor as in DynamicViT;
    the tiny tolerance keeps exact products such as ``0.5 * 128`` from rounding down
    through floating-point error), and never fewer than one token.

    Example:
        >>> num_kept_tokens(128, 0.7), num_kept_tokens(128, 0.343), num_kept_tokens(8, 0.01)
        (89, 43, 1)

    Raises:
        TypeError: ``num_patches`` is not an int or ``ratio`` not a real number.
        ValueError: ``num_patches < 1`` or ``ratio`` outside ``(0, 1]``.
    """
    num_patches = check_int("num_patches", num_patches, low=1)
    ratio = check_real("ratio", ratio, low=0.0, high=1.0, low_open=True)
    return max(1, min(num_patches, math.floor(ratio * num_patches + 1e-6)))


def gumbel_keep_decision(log_probs: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Hard keep decisions ``D`` from keep/drop log-probabilities (Eq. 2).

    Gumbel-softmax with a hard one-hot forward and straight-through gradient; index 1
    (keep) is returned. The forward values are exactly 0 or 1 (the straight-through term
    ``soft - soft.detach()`` is an exact zero). Noise comes from the torch RNG only.

    Args:
        log_probs: ``(B, N, 2)`` log-probabilities, index 0 drop, index 1 keep.
        tau: Gumbel-softmax temperature, > 0.

    Returns:
        ``(B, N)`` decisions in {0, 1}; float32 for float16/bfloat16 ``log_probs``.

    Example:
        >>> d = gumbel_keep_decision(torch.randn(2, 5, 2).log_softmax(-1))
        >>> d.shape
        torch.Size([2, 5])
    """
    if log_probs.ndim != 3 or log_probs.shape[-1] != 2:
        raise ValueError(f"log_probs must have shape (B, N, 2), got {tuple(log_probs.shape)}")
    check_real("tau", tau, low=0.0, high=math.inf, low_open=True, high_open=True)
    # float32 noise even under mixed precision: a float16 Exponential sample can underflow to
    # 0, and -log(0) = inf would make the softmax NaN
    with no_autocast(log_probs.device.type):
        soft = F.gumbel_softmax(fp32(log_probs), tau=tau, hard=False)[..., 1]
    hard = (soft > 0.5).to(soft.dtype)  # argmax of two entries that sum to 1
    return hard + (soft - soft.detach())


def masked_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    keep: torch.Tensor,
    *,
    scale: float | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention where dropped tokens talk only to themselves (Eqs. 4-6).

    ``A = q k^T * scale``, ``G_ij = 1 if i == j else keep_j`` and
    ``softmax_G(A)_ij = exp(A_ij) G_ij / sum_k exp(A_ik) G_ik``. The row maximum over the
    entries with ``G > 0`` is subtracted first; since ``G_ii = 1`` that maximum is finite
    and the denominator is at least 1, so no epsilon is needed. Gradients flow into
    ``keep``. With a hard mask, the rows of kept tokens equal ordinary attention over the
    kept tokens only; a dropped token ``i`` still reads the kept tokens and itself.

    Args:
        q, k, v: ``(B, H, T, D)``.
        keep: ``(B, T)`` keep mask over all tokens (prefix tokens should be 1).
        scale: logit scale; default ``D ** -0.5``.
        dropout_p: dropout on the attention weights (training only; pass 0 in eval).

    Float16/bfloat16 inputs (or a call inside ``torch.autocast``) are computed in float32
    and the results cast back to ``v.dtype``: finite for any finite float16 ``q``, ``k``.

    Returns:
        ``out (B, H, T, D)`` and the attention weights ``attn (B, H, T, T)`` (before
        dropout).
    """
    b, _, t, d = q.shape
    if keep.shape != (b, t):
        raise ValueError(f"keep must have shape (B, T) = {(b, t)}, got {tuple(keep.shape)}")
    scale = d**-0.5 if scale is None else scale
    if q.dtype in (torch.float16, torch.bfloat16) or autocast_enabled(q.device.type):
        # Mixed precision: logits, softmax and the weighted sum in float32 with autocast off,
        # so float16 logits cannot overflow (|q.k| > 65504 would be inf, and inf - inf NaN)
        # and the row sums keep float32 precision; the output returns in v's dtype.
        with no_autocast(q.device.type):
            out, attn = _masked_attention(
                fp32(q), fp32(k), fp32(v), fp32(keep), scale=scale, dropout_p=dropout_p
            )
        return out.to(v.dtype), attn.to(v.dtype)
    return _masked_attention(q, k, v, keep, scale=scale, dropout_p=dropout_p)


def _masked_attention(q, k, v, keep, *, scale: float, dropout_p: float):
    t = q.shape[-2]
    logits = (q * scale) @ k.transpose(-2, -1)
    eye = torch.eye(t, dtype=logits.dtype, device=logits.device)
    gate = rearrange(keep.to(logits.dtype), "b t -> b 1 1 t") * (1.0 - eye) + eye  # Eq. 5
    row_max = torch.where(gate > 0, logits, float("-inf")).amax(-1, keepdim=True).detach()
    # Entries with G > 0 are <= row_max; only masked-out entries (weight 0 in the forward) can
    # lie above it. Setting those to 0 keeps exp() finite there (inf * 0 would be NaN) and caps
    # their gradient towards ``keep`` at that of a logit equal to the row maximum. Not
    # clamp_max(0): its gradient is 0 at the bound itself, where the row maximum sits, which
    # cut the entry attention weighs most out of every backward pass (fixed in 0ac60e5).
    shifted = logits - row_max
    weights = shifted.masked_fill(shifted > 0, 0.0).exp() * gate
    attn = weights / weights.sum(-1, keepdim=True)  # Eq. 6
    used = F.dropout(attn, p=dropout_p) if dropout_p > 0 else attn
    return used @ v, attn


def select_topk_tokens(
    x: torch.Tensor,
    keep_score: torch.Tensor,
    k: int,
    num_prefix_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Physically keep the prefix tokens and the ``k`` highest-scoring patch tokens.

    The kept patch tokens stay in their original order (``idx`` is sorted): the blocks are
    permutation-equivariant so order does not change the result, but ordered indices are
    easier to visualise and line up, and sorting ``k <= N`` ints costs far less than one
    block. Static ``k``, ``topk`` and ``index_select`` only (no data-dependent Python
    control flow), so it traces and exports to ONNX.

    Args:
        x: ``(B, P + N, C)`` tokens, the first ``P = num_prefix_tokens`` are never dropped.
        keep_score: ``(B, N)`` score per patch token, higher is kept first.
        k: number of patch tokens to keep, ``1 <= k <= N``.
        num_prefix_tokens: ``P``.

    Returns:
        ``x_kept (B, P + k, C)`` and ``idx (B, k)``, indices into the ``N`` patch tokens of
        ``x``.

    Example:
        >>> x = torch.arange(5.0).view(1, 5, 1)  # one prefix token, four patches
        >>> select_topk_tokens(x, torch.tensor([[0.1, 0.9, 0.2, 0.8]]), 2, 1)[1]
        tensor([[1, 3]])
    """
    if not torch.jit.is_tracing():  # shapes are static under tracing (ONNX export)
        n = x.shape[1] - num_prefix_tokens
        if keep_score.shape != (x.shape[0], n):
            raise ValueError(
                f"keep_score must have shape (B, N) = {(x.shape[0], n)}, "
                f"got {tuple(keep_score.shape)}"
            )
        if not 1 <= k <= n:
            raise ValueError(f"k must be in [1, {n}], got {k}")
    idx = keep_score.topk(k, dim=1, sorted=False).indices.sort(dim=1).values
    return gather_tokens(x, idx, num_prefix_tokens), idx


def gather_tokens(x: torch.Tensor, idx: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    """The prefix tokens and the patch tokens ``idx`` of ``x``, in that order.

    Args:
        x: ``(B, P + N, C)`` tokens, ``P = num_prefix_tokens``.
        idx: ``(B, k)`` int64 indices into the ``N`` patch tokens.

    Returns:
        ``(B, P + k, C)``; differentiable in ``x``.
    """
    # One row gather of prefix + kept patches on the flattened batch, straight into the
    # output layout: index_select copies whole C-rows, where torch.gather with an expanded
    # index reads one element at a time (measured in docs/hts.md, "Measurements behind the
    # docstrings"), and concatenating the prefix afterwards would copy the kept tokens a
    # second time (docs/hts.md, issue 28). Token j of image i is row i * T + j; one arange
    # holds the offsets i * T.
    b, t, c = x.shape
    p, k = num_prefix_tokens, idx.shape[1]
    rows = torch.cat([torch.arange(p, device=idx.device).expand(b, p), idx + p], dim=1)
    rows = rows + torch.arange(0, b * t, t, device=idx.device).unsqueeze(1)
    kept = x.reshape(b * t, c).index_select(0, rows.view(-1))
    return kept.view(b, p + k, c)


def topk_keep_mask(score: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Hard ``(B, N)`` mask of the ``k`` highest-``score`` tokens among those ``mask`` keeps.

    The training path's counterpart of :func:`select_topk_tokens`: with the class attention
    of a masked block as ``score`` (the class token attended to kept tokens only, as on the
    inference path where the dropped ones are gone) it keeps the tokens that path keeps.

    Args:
        score: ``(B, N)`` score per patch token.
        mask: ``(B, N)`` running hard keep mask; ``k`` is at most its count per row.
        k: number of tokens to keep.

    Returns:
        ``(B, N)`` mask in ``mask``'s dtype, ``k`` ones per row.
    """
    idx = score.masked_fill(mask == 0, float("-inf")).topk(k, dim=1, sorted=False).indices
    return torch.zeros_like(mask).scatter_(1, idx, 1.0)
