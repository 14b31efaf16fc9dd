"""The per-stage decision module of HTS (Eq. 1)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_real

__all__ = ["DecisionModule"]


class DecisionModule(nn.Module):
    """Keep/drop log-probabilities for each patch token (Eq. 1), DynamicViT-style.

    ``LayerNorm -> Linear -> GELU`` gives per-token features; the first half of the
    channels stays local, the second half is replaced by the mean over the kept tokens
    (mask-weighted, so dropped tokens do not count; the denominator is clamped so an empty
    mask gives 0, never NaN). The concatenation goes through a small MLP to two
    log-probabilities. Index 1 means keep.

    Args:
        embed_dim: token width ``C``.
        init_keep: start near "keep": the last layer's bias is set so that an untrained
            module keeps a token with probability about ``init_keep`` (its weights keep their
            random init, so tokens still differ and every layer gets gradients). ``None``
            (default): PyTorch's init, as DynamicViT, which keeps about half the tokens at
            random. :class:`~sureid.HTSViT` passes ``decision_init_keep``.
        hidden_dim: width after the first linear layer; even and >= 4. Default
            ``embed_dim // 2``, half of DynamicViT's ``embed_dim``: the module runs on every
            patch token at every stage, so its width sets its share of the forward (measured
            in ``docs/hts.md``, "Throughput").

    Shapes:
        ``forward(x (B, N, C), mask (B, N) or None) -> (B, N, 2)``; ``mask=None`` means all
        tokens are kept (the inference path, where dropped tokens are already gone).

    Example:
        >>> m = DecisionModule(32)
        >>> m(torch.randn(2, 10, 32), torch.ones(2, 10)).shape
        torch.Size([2, 10, 2])
    """

    def __init__(
        self, embed_dim: int, *, hidden_dim: int | None = None, init_keep: float | None = None
    ) -> None:
        super().__init__()
        embed_dim = check_int("embed_dim", embed_dim, low=1)
        if hidden_dim is None:
            hidden_dim = max(4, embed_dim // 2 // 2 * 2)
        hidden_dim = check_int("hidden_dim", hidden_dim, low=4)
        if hidden_dim % 2:
            raise ValueError(f"hidden_dim must be even, got {hidden_dim}")
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.in_conv = nn.Sequential(
            nn.LayerNorm(embed_dim), nn.Linear(embed_dim, hidden_dim), nn.GELU()
        )
        self.out_conv = nn.Sequential(
            nn.Linear(hidden_dim, hidden_dim // 2),
            nn.GELU(),
            nn.Linear(hidden_dim // 2, hidden_dim // 4),
            nn.GELU(),
            nn.Linear(hidden_dim // 4, 2),
            nn.LogSoftmax(dim=-1),
        )
        if init_keep is not None:
            self.reset_keep_bias(init_keep)

    @torch.no_grad()
    def reset_keep_bias(self, keep: float) -> None:
        """Set the last layer's bias to ``(0, log(keep / (1 - keep)))``: with the random
        weights' small contribution, an untrained module keeps about ``keep`` of the tokens
        (the Gumbel hard decision keeps a token with exactly its keep probability).

        Raises:
            TypeError: ``keep`` is not a real number.
            ValueError: ``keep`` is outside ``(0, 1)``.
        """
        keep = check_real("init_keep", keep, low=0.0, high=1.0, low_open=True, high_open=True)
        last = self.out_conv[-2]
        last.bias.copy_(torch.tensor([0.0, math.log(keep / (1.0 - keep))]))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if not torch.jit.is_tracing():
            if x.ndim != 3 or x.shape[-1] != self.embed_dim:
                raise ValueError(
                    f"x must have shape (B, N, {self.embed_dim}), got {tuple(x.shape)}")
            if mask is not None and mask.shape != x.shape[:2]:
                raise ValueError(f"mask must have shape (B, N) = {tuple(x.shape[:2])}, got "
                                 f"{tuple(mask.shape)}")
        # The layers of in_conv/out_conv called as functions on their parameters: the same
        # operators as calling the modules, without a dozen module calls, which at batch 1
        # cost a small model as much as the arithmetic (docs/hts.md, "Throughput").
        # unpacked by iteration: Sequential's integer indexing costs a microsecond a layer
        norm, lin, _ = self.in_conv
        first, _, second, _, last, _ = self.out_conv
        h = F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        h = F.gelu(F.linear(h, lin.weight, lin.bias))
        half = self.hidden_dim // 2
        local, glob = h.split(half, dim=-1)
        if mask is None:
            glob = glob.mean(dim=1, keepdim=True)
        else:
            w = mask.to(h.dtype).unsqueeze(-1)
            count = w.sum(dim=1, keepdim=True).clamp_min(torch.finfo(h.dtype).eps)
            glob = (glob * w).sum(dim=1, keepdim=True) / count
        # out_conv[0] on concat([local, glob]) without materialising the concat: the global
        # half is the same for every token, so its product is computed once per image.
        w = first.weight
        y = F.linear(local, w[:, :half], first.bias) + F.linear(glob, w[:, half:])
        y = F.linear(F.gelu(y), second.weight, second.bias)
        y = F.linear(F.gelu(y), last.weight, last.bias)
        return F.log_softmax(y, dim=-1)
