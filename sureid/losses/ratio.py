"""The keep-ratio loss of HTS (Eq. 9)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._amp import fp32, no_autocast
from .._checks import check_real

__all__ = ["RatioLoss"]


def _check_ratios(ratios: Sequence[float], name: str) -> tuple[float, ...]:
    if isinstance(ratios, (str, bytes)) or not isinstance(ratios, Sequence):
        raise TypeError(f"{name} must be a sequence of floats, got {type(ratios).__name__}")
    out = [check_real(f"{name}[{i}]", r, low=0.0, high=1.0) for i, r in enumerate(ratios)]
    if not out:
        raise ValueError(f"{name} must hold at least one ratio, got []")
    return tuple(out)


class RatioLoss(nn.Module):
    """``L_ratio = 1/B sum_b sum_j (p_j - 1/N sum_i D_i^{b,j})^2`` (Eq. 9).

    Summed over stages, averaged over the batch, exactly as the paper writes it.

    Args:
        target_ratios: ``p_j`` per stage, e.g. ``HTSViT.keep_ratios``. May be left out and
            given at call time instead.

    Shapes:
        ``forward(keep_masks: S tensors (B, N), target_ratios=None) -> ()``.

    Raises:
        ValueError/TypeError: ratios outside ``[0, 1]``, a mask count that differs from the
        ratio count, masks that are not ``(B, N)`` with one common ``B``.

    Example:
        >>> loss = RatioLoss([0.7, 0.49])
        >>> loss([torch.ones(2, 10), torch.ones(2, 10)])
        tensor(0.3501)
    """

    def __init__(self, target_ratios: Sequence[float] | None = None) -> None:
        super().__init__()
        self.target_ratios = (
            None if target_ratios is None else _check_ratios(target_ratios, "target_ratios")
        )

    def forward(
        self,
        keep_masks: Sequence[torch.Tensor],
        target_ratios: Sequence[float] | None = None,
    ) -> torch.Tensor:
        if target_ratios is not None:
            ratios = _check_ratios(target_ratios, "target_ratios")
        elif self.target_ratios is not None:
            ratios = self.target_ratios
        else:
            raise ValueError(
                "target_ratios must be given to RatioLoss(...) or to the call, got neither"
            )
        if isinstance(keep_masks, torch.Tensor) or not isinstance(keep_masks, Sequence):
            raise TypeError(
                f"keep_masks must be a sequence of (B, N) tensors, got {type(keep_masks).__name__}"
            )
        if len(keep_masks) != len(ratios):
            raise ValueError(
                f"expected one keep mask per target ratio ({len(ratios)}), got {len(keep_masks)}"
            )
        shapes = [tuple(m.shape) if isinstance(m, torch.Tensor) else None for m in keep_masks]
        if any(s is None or len(s) != 2 for s in shapes) or len({s[0] for s in shapes}) != 1:
            raise ValueError(f"keep_masks must be (B, N) tensors with one common B, got {shapes}")
        if any(0 in s for s in shapes):  # a mean over nothing would be NaN
            raise ValueError(f"keep_masks must be non-empty (B >= 1, N >= 1), got {shapes}")
        with no_autocast(keep_masks[0].device.type):  # float32 means, also under autocast
            kept = torch.stack(
                [(fp32(m) if m.is_floating_point() else m.float()).mean(dim=1) for m in keep_masks],
                dim=1,
            )  # (B, S)
            target = kept.new_tensor(ratios)
            return (kept - target).pow(2).sum(dim=1).mean()
