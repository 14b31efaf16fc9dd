"""The training-time output of :class:`sureid.HTSViT`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class HTSOutput:
    """What ``HTSViT`` returns in training mode.

    Attributes:
        features: ``(B, C)`` embedding: the class token after the final norm, or the
            wrapped model's pooling over the kept tokens then its ``fc_norm`` (same as eval).
        tokens: ``(B, T, C)`` final token sequence after the final norm, ``T = P + N``
            (``P`` prefix tokens: class and register tokens; ``N`` patch tokens). In
            training no token is physically removed: dropped ones are only masked out.
        keep_masks: one ``(B, N)`` cumulative keep mask per pruning stage (Eq. 3),
            patch tokens only, values in {0, 1} with straight-through gradients.
            Feed these to :class:`sureid.RatioLoss`.
        cls_attn: ``(B, T)`` class-token attention of the last block averaged over
            heads (Eq. 7), computed with the running keep mask; ``None`` when the
            model was asked not to compute it.
        num_prefix_tokens: ``P``, the number of leading class/register tokens in ``tokens``.
        keep_ratios: the target keep ratio ``p_j`` of each mask in ``keep_masks`` (what
            :class:`sureid.RatioLoss` pulls the masks towards, Eq. 9); empty with no masks.
    """

    features: torch.Tensor
    tokens: torch.Tensor
    keep_masks: list[torch.Tensor] = field(default_factory=list)
    cls_attn: torch.Tensor | None = None
    num_prefix_tokens: int = 1
    keep_ratios: tuple[float, ...] = ()

    @property
    def patch_tokens(self) -> torch.Tensor:
        """``(B, N, C)`` final patch tokens (prefix tokens removed)."""
        return self.tokens[:, self.num_prefix_tokens :]

    @property
    def final_mask(self) -> torch.Tensor:
        """``(B, N)`` keep mask after the last stage (all ones when nothing is pruned)."""
        if self.keep_masks:
            return self.keep_masks[-1]
        b, t, _ = self.tokens.shape
        return self.tokens.new_ones(b, t - self.num_prefix_tokens)
